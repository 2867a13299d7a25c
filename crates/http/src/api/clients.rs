//! `/api/clients`: every connected Kafka and NSQ client, from the broker's one registry.

use super::error::ApiResult;
use super::ok;
use crate::AppState;
use axum::extract::State;

pub async fn list(State(s): State<AppState>) -> ApiResult {
    let mut clients = s.channels.broker().clients().list();
    clients.sort_by_key(|c| c.id);
    Ok(ok(&clients))
}
