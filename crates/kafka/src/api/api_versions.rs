//! ApiVersions: the APIs and versions this listener really serves.

use crate::codec::response_frame;
use crate::dispatch::{DispatchError, RequestMeta};
use crate::error_codes::{NONE, UNSUPPORTED_VERSION};
use crate::versions::SUPPORTED_APIS;
use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

pub fn handle(_request: ApiVersionsRequest, _meta: RequestMeta) -> ApiVersionsResponse {
    response(NONE)
}

/// The v0 answer to an ApiVersions request of a version we do not serve.
pub fn unsupported(correlation_id: i32) -> Result<Bytes, DispatchError> {
    response_frame(correlation_id, 0, &response(UNSUPPORTED_VERSION), 0)
        .map_err(|e| DispatchError::Encode(ApiKey::ApiVersions, 0, e.to_string()))
}

fn response(error_code: i16) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.error_code = error_code;
    response.api_keys = SUPPORTED_APIS
        .iter()
        .map(|(api, min, max)| {
            let mut version = ApiVersion::default();
            version.api_key = *api as i16;
            version.min_version = *min;
            version.max_version = *max;
            version
        })
        .collect();
    response
}
