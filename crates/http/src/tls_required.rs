//! nsqd's `--tls-required=true` on the plain HTTP listener: every nsqd (and nsqlookupd) API
//! request is answered `403 {"message": "TLS_REQUIRED", "https_port": N}`, which go-nsq's
//! and nsqadmin's HTTP clients follow to the HTTPS port. Sluice's own paths on the same
//! listener (the admin API under `/api/`, `/metrics`, the console) stay served: they are not
//! nsqd's, and operators reach them on loopback.

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

/// Wraps the plain listener's router; `https_port` is what the answer names (0 without one).
pub fn refuse_plain_nsqd_api(router: Router, https_port: u16) -> Router {
    router.layer(axum::middleware::from_fn(move |request: Request<Body>, next: Next| async move {
        if is_sluice_path(request.uri().path()) {
            return next.run(request).await;
        }
        tls_required(https_port)
    }))
}

fn is_sluice_path(path: &str) -> bool {
    path == "/" || path == "/metrics" || path.starts_with("/api/") || path.starts_with("/console/")
}

fn tls_required(https_port: u16) -> Response {
    let body = format!(r#"{{"message": "TLS_REQUIRED", "https_port": {https_port}}}"#);
    let mut response = (StatusCode::FORBIDDEN, body).into_response();
    let headers = response.headers_mut();
    headers.insert("X-NSQ-Content-Type", HeaderValue::from_static("nsq; version=1.0"));
    headers.insert("Content-Type", HeaderValue::from_static("application/json; charset=utf-8"));
    response
}
