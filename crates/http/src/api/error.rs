//! Errors of the admin API: JSON `{"error": "<message>"}` with the status that says what went
//! wrong (docs/admin-api.md), and the mapping from the core's errors to those statuses.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sluice_broker::group::reset::ResetError;
use sluice_broker::group::GroupError;
use sluice_broker::BrokerError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

pub type ApiResult = Result<Response, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// A core error about `what` (e.g. "topic 'x'"), with the status its kind calls for.
    pub fn broker(e: BrokerError, what: &str) -> ApiError {
        let status = match e {
            BrokerError::UnknownTopicOrPartition => return ApiError::not_found(format!("unknown {what}")),
            BrokerError::TopicAlreadyExists => return ApiError::conflict(format!("{what} already exists")),
            BrokerError::TopicLimitReached { .. } => StatusCode::CONFLICT,
            BrokerError::InvalidTopic(_)
            | BrokerError::InvalidPartitions(_)
            | BrokerError::InvalidConfig(_)
            | BrokerError::MessageTooLarge { .. }
            | BrokerError::CorruptMessage(_)
            | BrokerError::InvalidRecord(_)
            | BrokerError::OffsetOutOfRange { .. } => StatusCode::BAD_REQUEST,
            BrokerError::Storage(_) | BrokerError::Log { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }

    /// A group error about `group`.
    pub fn group(e: GroupError, group: &str) -> ApiError {
        match e {
            GroupError::InvalidGroupId => ApiError::bad_request(format!("invalid group id '{group}'")),
            GroupError::GroupIdNotFound => ApiError::not_found(format!("unknown group '{group}'")),
            GroupError::NonEmptyGroup => {
                ApiError::conflict(format!("group '{group}' has active members; stop its consumers first"))
            }
            GroupError::UnknownTopicOrPartition => ApiError::not_found("unknown topic or partition"),
            GroupError::Storage => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "offsets storage failed"),
            // In a cluster a group is served by the leader of its offsets partition only.
            GroupError::NotCoordinator | GroupError::CoordinatorLoadInProgress => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("group '{group}': {e}; in a cluster ask the node that coordinates it"),
            ),
            other => ApiError::new(StatusCode::CONFLICT, format!("group '{group}': {other}")),
        }
    }

    pub fn reset(e: ResetError, group: &str, topic: &str) -> ApiError {
        match e {
            ResetError::Broker(e) => ApiError::broker(e, &format!("topic or partition of '{topic}'")),
            ResetError::Group(e) => ApiError::group(e, group),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        super::json(self.status, &serde_json::json!({ "error": self.message }))
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> ApiError {
        ApiError::bad_request(format!("bad path: {}", e.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> ApiError {
        ApiError::bad_request(format!("bad query: {}", e.body_text()))
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> ApiError {
        ApiError::new(e.status(), format!("bad body: {}", e.body_text()))
    }
}

/// Answer for a path under `/api` that names no endpoint.
pub async fn no_such_endpoint() -> ApiError {
    ApiError::not_found("no such endpoint (see /api/openapi.json)")
}

/// Answer for a known path asked with a method it does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed (see /api/openapi.json)")
}
