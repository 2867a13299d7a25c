//! The channels other cluster nodes serve for a topic, for nsqlookupd's `/channels` and
//! `/lookup`: a channel lives on the node its consumers subscribed to (a partition leader),
//! so each live node is asked over its nsqd HTTP API (`/stats?format=json&topic=`, node-local
//! as nsqd's), one plain HTTP/1.0 GET each, bounded in time and bytes. A node that does not
//! answer (down, TLS required) adds nothing: the list is best effort, as nsqlookupd's is.

use std::time::Duration;

/// How long one node may take to answer (a local read of its channel registry).
const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes read from one answer at most (a topic's stats without clients).
const ANSWER_BYTES_MAX: usize = 4 * 1024 * 1024;

/// The channel names `http_addr` (HOST:PORT) serves for `topic`; empty when it does not answer.
pub(crate) async fn channels_at(http_addr: &str, topic: &str) -> Vec<String> {
    // NSQ names are [.a-zA-Z0-9_-] and `#ephemeral`; only the '#' needs escaping.
    let path =
        format!("/stats?format=json&include_clients=false&include_mem=false&topic={}", topic.replace('#', "%23"));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {http_addr}\r\n\r\n");
    let answer = sluice_http_wire::exchange(http_addr, request.as_bytes(), PEER_TIMEOUT, ANSWER_BYTES_MAX).await;
    match answer.and_then(|a| channel_names(&a)) {
        Ok(names) => names,
        Err(why) => {
            tracing::debug!(node = http_addr, topic, reason = %why, "no channel list from a node");
            Vec::new()
        }
    }
}

/// The channel names in an nsqd `/stats` JSON answer.
fn channel_names(answer: &sluice_http_wire::Answer) -> Result<Vec<String>, String> {
    if answer.status != 200 {
        return Err(format!("answered {}", answer.status));
    }
    let stats: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
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

    fn names(raw: &[u8]) -> Result<Vec<String>, String> {
        channel_names(&sluice_http_wire::parse_answer(raw)?)
    }

    #[test]
    fn channel_names_come_from_every_topic_listed() {
        let answer = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"topics\":[{\"topic_name\":\"t\",\"channels\":[{\"channel_name\":\"a\"},{\"channel_name\":\"b\"}]}]}";
        assert_eq!(names(answer), Ok(vec!["a".to_string(), "b".to_string()]));
    }

    #[test]
    fn an_error_answer_lists_nothing() {
        assert!(names(b"HTTP/1.0 403 Forbidden\r\n\r\n{\"message\":\"TLS_REQUIRED\"}").is_err());
        assert!(names(b"HTTP/1.0 200 OK\r\n\r\nnot json").is_err());
    }
}
