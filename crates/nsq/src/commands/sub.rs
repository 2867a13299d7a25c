//! SUB <topic> <channel>: join a channel (created on first use).

use crate::codec::Command;
use crate::connection::{Conn, ConnState, Subscription};
use crate::error::{quoted, NsqError, NsqResult};
use sluice_broker::channel::{is_valid_nsq_name, ClientInfo};
use std::sync::Arc;

pub async fn run(conn: &mut Conn, command: &Command) -> NsqResult<()> {
    if conn.state != ConnState::Init {
        return Err(NsqError::fatal("E_INVALID", "cannot SUB in current state"));
    }
    if conn.identity.heartbeat_interval.is_none() {
        return Err(NsqError::fatal("E_INVALID", "cannot SUB with heartbeats disabled"));
    }
    let (Some(topic), Some(channel)) = (command.params.get(1), command.params.get(2)) else {
        return Err(NsqError::fatal("E_INVALID", "SUB insufficient number of parameters"));
    };
    let topic_name = std::str::from_utf8(topic).ok().filter(|t| is_valid_nsq_name(t));
    let Some(topic_name) = topic_name else {
        return Err(NsqError::fatal("E_BAD_TOPIC", format!("SUB topic name {} is not valid", quoted(topic))));
    };
    let channel_name = std::str::from_utf8(channel).ok().filter(|c| is_valid_nsq_name(c));
    let Some(channel_name) = channel_name else {
        return Err(NsqError::fatal("E_BAD_CHANNEL", format!("SUB channel name {} is not valid", quoted(channel))));
    };
    super::auth::check(conn, "SUB", topic_name, channel_name).await?;
    // Creating a topic or channel writes and fsyncs files: off the async runtime.
    let channels = Arc::clone(&conn.channels);
    let (topic_name, channel_name) = (topic_name.to_string(), channel_name.to_string());
    let channel = tokio::task::spawn_blocking(move || channels.channel_or_create(&topic_name, &channel_name))
        .await
        .map_err(|e| NsqError::fatal("E_SUB_FAILED", format!("SUB failed {e}")))?
        .map_err(|e| NsqError::fatal("E_SUB_FAILED", format!("SUB failed {e}")))?;
    let client = Arc::new(ClientInfo {
        id: conn.id,
        client_id: conn.identity.client_id.clone(),
        hostname: conn.identity.hostname.clone(),
        user_agent: conn.identity.user_agent.clone(),
        remote_address: conn.remote.to_string(),
        connect_ts: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        deflate: conn.identity.deflate_level.is_some(),
        snappy: conn.identity.snappy,
        sample_rate: conn.identity.sample_rate,
        tls_version: conn.tls_details.as_ref().map(|d| d.0.clone()).unwrap_or_default(),
        tls_cipher_suite: conn.tls_details.as_ref().map(|d| d.1.clone()).unwrap_or_default(),
        auth_identity: conn.auth.as_ref().map(|a| (a.state.identity.clone(), a.state.identity_url.clone())),
        ..ClientInfo::default()
    });
    if !channel.add_client(Arc::clone(&client)) {
        return Err(NsqError::fatal("E_SUB_FAILED", "SUB failed channel consumers for this channel exceed limit"));
    }
    conn.client.client().update(|details| {
        details.topic = channel.topic.to_string();
        details.channel = channel.name.to_string();
    });
    conn.sub = Some(Subscription { channel, client });
    conn.state = ConnState::Subscribed;
    conn.respond(b"OK");
    Ok(())
}
