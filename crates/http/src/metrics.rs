//! `GET /metrics`: every broker metric in the Prometheus text format (`docs/metrics.md`).

use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sluice_broker::metrics::CONTENT_TYPE;
use std::sync::Arc;

pub async fn metrics(State(state): State<AppState>) -> Response {
    // A scrape walks every partition, group and channel and reads /proc: blocking work that
    // must not hold up the runtime's threads serving requests.
    let channels = Arc::clone(&state.channels);
    let rendered = tokio::task::spawn_blocking(move || channels.broker().metrics().render(&channels)).await;
    match rendered {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("metrics task failed: {e}")).into_response(),
    }
}
