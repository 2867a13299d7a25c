//! The channels other cluster nodes serve for a topic, for nsqlookupd's `/channels` and
//! `/lookup`: a channel lives on the node its consumers subscribed to (a partition leader),
//! so each live node is asked over its nsqd HTTP API (`/stats?format=json&topic=`, node-local
//! as nsqd's), one plain HTTP/1.0 GET each, bounded in time and bytes. A node that does not
//! answer (down, TLS required) adds nothing: the list is best effort, as nsqlookupd's is.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one node may take to answer (a local read of its channel registry).
const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes read from one answer at most (a topic's stats without clients).
const ANSWER_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// The channel names `http_addr` (HOST:PORT) serves for `topic`; empty when it does not answer.
pub(crate) async fn channels_at(http_addr: &str, topic: &str) -> Vec<String> {
    match tokio::time::timeout(PEER_TIMEOUT, fetch(http_addr, topic)).await {
        Ok(Ok(names)) => names,
        Ok(Err(why)) => {
            tracing::debug!(node = http_addr, topic, reason = %why, "no channel list from a node");
            Vec::new()
        }
        Err(_) => {
            tracing::debug!(node = http_addr, topic, "no channel list from a node in time");
            Vec::new()
        }
    }
}

async fn fetch(http_addr: &str, topic: &str) -> Result<Vec<String>, String> {
    let mut stream = TcpStream::connect(http_addr).await.map_err(|e| e.to_string())?;
    // NSQ names are [.a-zA-Z0-9_-] and `#ephemeral`; only the '#' needs escaping.
    let path =
        format!("/stats?format=json&include_clients=false&include_mem=false&topic={}", topic.replace('#', "%23"));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {http_addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.take(ANSWER_BYTES_MAX).read_to_end(&mut answer).await.map_err(|e| e.to_string())?;
    channel_names(&answer)
}

/// The channel names in an nsqd `/stats` JSON answer (status line and headers included).
fn channel_names(answer: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(answer).map_err(|e| e.to_string())?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no end of headers")?;
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(format!("answered {}", head.lines().next().unwrap_or_default()));
    }
    let stats: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let topics = stats["topics"].as_array().ok_or("no topics")?;
    Ok(topics
        .iter()
        .flat_map(|t| t["channels"].as_array().into_iter().flatten())
        .filter_map(|c| c["channel_name"].as_str().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_come_from_every_topic_listed() {
        let answer = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"topics\":[{\"topic_name\":\"t\",\"channels\":[{\"channel_name\":\"a\"},{\"channel_name\":\"b\"}]}]}";
        assert_eq!(channel_names(answer), Ok(vec!["a".to_string(), "b".to_string()]));
    }

    #[test]
    fn an_error_answer_lists_nothing() {
        assert!(channel_names(b"HTTP/1.0 403 Forbidden\r\n\r\n{\"message\":\"TLS_REQUIRED\"}").is_err());
        assert!(channel_names(b"HTTP/1.0 200 OK\r\n\r\nnot json").is_err());
    }
}
