//! `/api/mqtt`: the MQTT listeners, connected clients, persistent sessions with their
//! subscriptions, shared subscription groups and retained messages, as the MQTT listener
//! reports them.

use super::error::{ApiError, ApiResult};
use super::ok;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;

pub async fn status(State(s): State<AppState>) -> ApiResult {
    let status = s.config.mqtt.clone();
    // The session list reads the session store's files: not on a runtime worker.
    let snapshot = tokio::task::spawn_blocking(move || status.snapshot())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("mqtt status failed: {e}")))?;
    match snapshot {
        Some(snapshot) => Ok(ok(&snapshot)),
        None => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the MQTT listener has not started yet")),
    }
}
