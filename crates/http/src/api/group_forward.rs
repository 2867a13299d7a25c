//! In a cluster a group is served by its coordinator only (the leader of its
//! `__consumer_offsets` partition). A group endpoint asked at another node forwards the
//! request to the coordinator's admin API and relays its answer, so the API and
//! `sluice group describe|reset-offsets|delete` work from any node. A forwarded request
//! carries `FORWARDED_HEADER` and is always answered where it lands (no forwarding loops
//! while leadership moves: that node answers 503 as a non-coordinator would).

use super::error::ApiError;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sluice_broker::group::coordinator_of;
use sluice_broker::Broker;
use std::time::Duration;

/// Marks a request one node forwarded to another.
const FORWARDED_HEADER: &str = "x-sluice-forwarded";
/// Bound on the coordinator's answer (a reset reads the log by timestamp and commits
/// through Raft, which waits 15 s at most).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest answer relayed: a group's detail with thousands of partitions fits.
const ANSWER_BYTES_MAX: usize = 16 << 20;

/// Some(the coordinator's answer) when another node coordinates `group`; None to answer here
/// (no cluster, this node coordinates it, no coordinator known, or already forwarded).
pub async fn to_coordinator(
    broker: &Broker,
    group: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let cluster = broker.cluster()?;
    if headers.contains_key(FORWARDED_HEADER) {
        return None;
    }
    let coordinator = coordinator_of(broker, group).ok()?;
    if coordinator.node_id == broker.node_id() {
        return None;
    }
    let status = cluster.status()?;
    let node = status.nodes.iter().find(|n| n.node_id == coordinator.node_id as u64)?;
    // Nested under `/api`, the handler sees the path without it.
    let target = format!("/api{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or(uri.path()));
    // The coordinator checks the same user (users and ACLs are the cluster's) itself.
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    Some(match relay(&node.http_addr, method, &target, authorization, body).await {
        Ok(response) => response,
        Err(why) => unavailable(coordinator.node_id, group, &why),
    })
}

/// One HTTP/1.1 exchange with the coordinator (`Connection: close`, so its answer ends with
/// the connection).
async fn relay(
    addr: &str,
    method: &Method,
    target: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<Response, String> {
    let authorization = authorization.map(|value| format!("Authorization: {value}\r\n")).unwrap_or_default();
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{FORWARDED_HEADER}: 1\r\n\
         {authorization}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let answer = sluice_http_wire::exchange(addr, &request, FORWARD_TIMEOUT, ANSWER_BYTES_MAX).await?;
    as_response(answer)
}

/// The coordinator's answer as this node's (the admin API answers JSON or nothing).
fn as_response(answer: sluice_http_wire::Answer) -> Result<Response, String> {
    let status = StatusCode::from_u16(answer.status).map_err(|e| e.to_string())?;
    if answer.body.is_empty() {
        return Ok(status.into_response());
    }
    Ok((status, [(header::CONTENT_TYPE, "application/json")], answer.body).into_response())
}

fn unavailable(node: i32, group: &str, why: &str) -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("group '{group}' is coordinated by node {node}, which did not answer: {why}"),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_an_answer_with_and_without_a_body() {
        let parse = |raw: &[u8]| as_response(sluice_http_wire::parse_answer(raw)?);
        let ok = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").expect("answer");
        assert_eq!(ok.status(), StatusCode::OK);
        let gone = parse(b"HTTP/1.1 204 No Content\r\n\r\n").expect("answer");
        assert_eq!(gone.status(), StatusCode::NO_CONTENT);
        assert!(parse(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
