//! v5 shared subscriptions (`$share/{group}/{filter}`, also taken from 3.1.1 clients as
//! Mosquitto does): queue semantics over an NSQ channel, not a second cursor. Each shared
//! subscription is one durable channel of the filter's log topic, named after its group and
//! filter; every member connection is a client of that channel, so each record goes to one
//! member, a member's unacknowledged deliveries go back to the channel (and to another
//! member) when it leaves, and the channel's checkpoint and retention floor are NSQ's.

use crate::codec::{QoS, Reason};
use crate::mapping::TopicMap;
use crate::subscription::{record_delivery, Ack, DeliverySender};
use crate::topics::{matches, valid_filter};
use crate::TOPIC_HEADER;
use sluice_broker::channel::{Channel, Channels, ClientInfo};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Prefix of a shared subscription's filter.
pub(crate) const SHARED_PREFIX: &str = "$share/";
/// Prefix of the channels behind shared subscriptions (visible in nsqd's `/stats`).
pub(crate) const CHANNEL_PREFIX: &str = "mqtt-share.";
/// Bytes of the group name kept in the channel name (NSQ names are at most 64 bytes).
const GROUP_IN_NAME_MAX: usize = 32;
/// How long a delivery may stay unacknowledged before the channel gives it to another
/// member (clamped to the channel's `--max-msg-timeout`): MQTT has no timeout while the
/// member is connected, so this only rescues messages from a member that stopped acking.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(3600);

/// A parsed `$share/{group}/{filter}`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ShareFilter<'a> {
    pub group: &'a str,
    pub filter: &'a str,
}

/// Parses a shared subscription's filter; `None` if it is not one; an error when it is
/// malformed (§4.8.2: the group is non-empty and holds no `/`, `+` or `#`).
pub(crate) fn parse(text: &str) -> Option<Result<ShareFilter<'_>, Reason>> {
    let rest = text.strip_prefix(SHARED_PREFIX)?;
    let Some((group, filter)) = rest.split_once('/') else { return Some(Err(Reason::TopicFilterInvalid)) };
    if group.is_empty() || group.contains(['+', '#']) || !valid_filter(filter) {
        return Some(Err(Reason::TopicFilterInvalid));
    }
    Some(Ok(ShareFilter { group, filter }))
}

/// The channel name of a shared subscription: readable group, and a hash of group and filter
/// (two groups, or one group with two filters, are different shared subscriptions).
pub(crate) fn channel_name(share: &ShareFilter<'_>) -> String {
    let group: String = share
        .group
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' { c } else { '_' })
        .take(GROUP_IN_NAME_MAX)
        .collect();
    format!("{CHANNEL_PREFIX}{group}.{:016x}", fnv1a(&[share.group.as_bytes(), b"\0", share.filter.as_bytes()]))
}

/// FNV-1a, 64 bits: stable across builds and restarts (the name is a checkpoint file name).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// One shared subscription of a connection: its channel and the task taking from it.
pub(crate) struct Membership {
    pub granted: QoS,
    /// The v5 subscription identifier given with it.
    pub id: Option<usize>,
    channel: Arc<Channel>,
    task: JoinHandle<()>,
}

impl Membership {
    /// Joins the share group of `share` as `member`; deliveries go to `out`.
    pub async fn join(
        channels: &Arc<Channels>,
        mapping: &TopicMap,
        share: &ShareFilter<'_>,
        granted: QoS,
        id: Option<usize>,
        member: &Arc<ClientInfo>,
        out: DeliverySender,
    ) -> Result<Membership, Reason> {
        // The log topic names the channel's topic: a wildcard first level would be every topic.
        // The channel is one log topic's: a filter reading several (a wildcard first level,
        // mapping rules) cannot be one group's queue.
        let log_topic = match mapping.filter_log_topics(share.filter) {
            Some(topics) if topics.len() == 1 => topics.into_iter().next().unwrap_or_default(),
            _ => return Err(Reason::SharedSubscriptionsNotSupported),
        };
        if let Err(e) = crate::publish::log_topic(channels.broker(), &log_topic).await {
            tracing::warn!(filter = share.filter, error = %e, "mqtt shared subscription's topic unavailable");
            return Err(Reason::UnspecifiedError);
        }
        let (registry, name) = (Arc::clone(channels), channel_name(share));
        let topic = sluice_broker::channel::nsq_topic_name(&log_topic);
        // Creating a channel writes and fsyncs its checkpoint: off the async runtime.
        let channel = tokio::task::spawn_blocking(move || registry.channel_at_end_or_create(&topic, &name))
            .await
            .map_err(|_| Reason::UnspecifiedError)?
            .map_err(|e| {
                tracing::warn!(filter = share.filter, error = %e, "mqtt shared subscription's channel unavailable");
                Reason::UnspecifiedError
            })?;
        if !channel.add_client(Arc::clone(member)) {
            return Err(Reason::QuotaExceeded);
        }
        let task = tokio::spawn(take_from(
            Arc::clone(&channel),
            Arc::clone(member),
            share.filter.to_string(),
            log_topic,
            (granted, id),
            out,
        ));
        Ok(Membership { granted, id, channel, task })
    }

    /// Leaves the group: what this member holds unacknowledged goes back to the channel for
    /// the others. The channel goes with its last member unless `keep` (a persistent session
    /// will come back to it).
    pub fn leave(self, channels: &Channels, member: &ClientInfo, keep: bool) {
        self.task.abort();
        channels.client_left(&self.channel, member.id);
        if !keep && self.channel.client_count() == 0 {
            let _ = channels.delete_channel(&self.channel.topic, &self.channel.name);
        }
    }
}

/// Takes the channel's messages for one member while its window has room (the member's
/// RDY is the connection's inflight window), and hands those its filter matches to the
/// connection; the rest (other MQTT topics of the same log topic) are finished at once.
async fn take_from(
    channel: Arc<Channel>,
    member: Arc<ClientInfo>,
    filter: String,
    log_topic: String,
    (granted, id): (QoS, Option<usize>),
    out: DeliverySender,
) {
    while let Some(message) = channel.next(&member, DELIVERY_TIMEOUT).await {
        let headers = message.headers.as_deref().unwrap_or_default();
        let topic = headers
            .iter()
            .find(|(k, _)| k == TOPIC_HEADER)
            .and_then(|(_, v)| std::str::from_utf8(v.as_deref()?).ok())
            .map_or_else(|| log_topic.clone(), str::to_string);
        let delivery = match matches(&filter, &topic) {
            true => record_delivery(topic, message.body, headers, granted, id.into_iter().collect()),
            false => None,
        };
        // Another MQTT topic of the same log topic, or an expired message: done with.
        let Some(mut delivery) = delivery else {
            let _ = channel.fin(message.id, &member);
            continue;
        };
        delivery.dup = message.attempts > 1 && delivery.qos != QoS::AtMostOnce;
        delivery.ack = Some(Ack::shared(Arc::clone(&channel), message.id, Arc::clone(&member)));
        if out.send(Box::new(delivery)).await.is_err() {
            return;
        }
    }
}

/// The channel client standing for one connection in every group it joins (nsqd's `/stats`
/// lists it), holding at most `window` deliveries unacknowledged.
pub(crate) fn member_info(id: u64, client_id: &str, remote: String, window: usize) -> Arc<ClientInfo> {
    let connect_ts = crate::publish::now_ms() / 1000;
    let info = ClientInfo {
        id,
        client_id: client_id.to_string(),
        user_agent: "mqtt".into(),
        remote_address: remote,
        connect_ts,
        ..ClientInfo::default()
    };
    set_window(&info, window);
    Arc::new(info)
}

/// A member's delivery finished: if that reopened a full window, its task waiting in
/// `Channel::next` is woken (a FIN alone wakes nobody: an NSQ client's RDY loop asks again
/// by itself, a member's task waits on the channel).
pub(crate) fn window_freed(channel: &Channel, member: &ClientInfo) {
    let ready = member.ready_count.load(Ordering::Relaxed);
    if member.in_flight_count.load(Ordering::Relaxed) + 1 >= ready {
        channel.wake();
    }
}

/// Sets how many deliveries a member may hold unacknowledged (its RDY).
pub(crate) fn set_window(member: &ClientInfo, window: usize) {
    member.ready_count.store(window.try_into().unwrap_or(i64::MAX), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_filters_parse_as_the_spec_says() {
        assert_eq!(parse("a/b"), None);
        assert_eq!(parse("$share/g/a/+"), Some(Ok(ShareFilter { group: "g", filter: "a/+" })));
        for bad in ["$share/", "$share/g", "$share//a", "$share/g+/a", "$share/g/", "$share/g/a#"] {
            assert!(matches!(parse(bad), Some(Err(_))), "{bad}");
        }
    }

    #[test]
    fn channel_names_are_legal_nsq_names_and_tell_filters_apart() {
        let a = channel_name(&ShareFilter { group: "workers", filter: "jobs/+" });
        let b = channel_name(&ShareFilter { group: "workers", filter: "jobs/#" });
        assert_ne!(a, b);
        assert!(a.starts_with("mqtt-share.workers."));
        let long = "ü".repeat(100);
        for name in [a, b, channel_name(&ShareFilter { group: &long, filter: "x" })] {
            assert!(sluice_broker::channel::is_valid_nsq_name(&name), "{name}");
        }
    }
}
