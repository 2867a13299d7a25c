//! Registration with nsqlookupd instances (`--lookupd-tcp-address`, repeatable, as nsqd's
//! flag), so an existing NSQ deployment's lookupd, its consumers and nsqadmin find this node.
//!
//! One task per lookupd keeps a connection open, as nsqd's `lookupLoop` does: IDENTIFY, then
//! REGISTER for every topic and channel, a PING every 15 s, and REGISTER/UNREGISTER as topics
//! and channels come and go. Where nsqd sends a command on each change, this compares what
//! it registered with the topics and channels there are, once a second: one place decides
//! what is announced, and a reconnect (lookupd forgets a closed connection's registrations)
//! is the same comparison from nothing.

use crate::lookup_peer::{LookupPeer, PeerError, PeerInfo};
use sluice_broker::channel::{is_valid_nsq_name, Channels};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// nsqd's heartbeat to lookupd.
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// How often registrations are compared with the topics and channels there are.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// First wait before reconnecting to a lookupd that failed; doubles up to the ping interval.
const RECONNECT_MIN: Duration = Duration::from_millis(500);

/// Where to register and what to say about this node.
#[derive(Debug, Clone)]
pub struct AnnounceConfig {
    /// `host:port` of each nsqlookupd's TCP listener.
    pub lookupd_tcp_addresses: Vec<String>,
    pub info: PeerInfo,
    /// Largest answer read from a lookupd (nsqd bounds it by its max body size).
    pub answer_max: usize,
}

/// Spawns one registration task per lookupd; each ends when `stop` turns true.
pub fn spawn(channels: Arc<Channels>, config: AnnounceConfig, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    config
        .lookupd_tcp_addresses
        .iter()
        .map(|addr| {
            let (addr, channels, config, stop) = (addr.clone(), Arc::clone(&channels), config.clone(), stop.clone());
            tokio::spawn(keep_registered(addr, channels, config, stop))
        })
        .collect()
}

/// Registers with the lookupd at `addr` until stopped, reconnecting after failures.
async fn keep_registered(
    addr: String,
    channels: Arc<Channels>,
    config: AnnounceConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = RECONNECT_MIN;
    while !*stop.borrow() {
        let started = tokio::time::Instant::now();
        match session(&addr, &channels, &config, &mut stop).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(lookupd = %addr, error = %e, "nsqlookupd registration failed; reconnecting"),
        }
        // A session that lasted was a working connection: its loss (a lookupd restart) is
        // retried quickly again, not after the backoff of earlier failures.
        if started.elapsed() >= PING_INTERVAL {
            backoff = RECONNECT_MIN;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(PING_INTERVAL);
    }
}

/// One connection's life: identify, then keep the registrations in step until stopped
/// (Ok) or the connection fails (Err).
async fn session(
    addr: &str,
    channels: &Channels,
    config: &AnnounceConfig,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), PeerError> {
    let (mut peer, lookupd_info) = LookupPeer::connect(addr, &config.info, config.answer_max).await?;
    tracing::info!(lookupd = %addr, info = %lookupd_info, "identified to nsqlookupd");
    let mut registered = Registrations::default();
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut sync = tokio::time::interval(SYNC_INTERVAL);
    loop {
        tokio::select! {
            // lookupd drops a closed connection's registrations, as when nsqd exits.
            _ = stop.changed() => return Ok(()),
            _ = ping.tick() => peer.ping().await?,
            _ = sync.tick() => registered.sync(&mut peer, &Registrations::of(channels)).await?,
        }
    }
}

/// Topics and (topic, channel) pairs as lookupd knows them from this node.
#[derive(Debug, Default, PartialEq)]
struct Registrations {
    topics: BTreeSet<String>,
    channels: BTreeSet<(String, String)>,
}

impl Registrations {
    /// What this node announces: every topic and channel whose name NSQ accepts (lookupd
    /// closes the connection on any other, and Kafka allows longer names).
    fn of(channels: &Channels) -> Registrations {
        let mut wanted = Registrations::default();
        for topic in channels.topics() {
            if !is_valid_nsq_name(&topic.name) {
                continue;
            }
            for channel in topic.channels() {
                if is_valid_nsq_name(&channel.name) {
                    wanted.channels.insert((topic.name.to_string(), channel.name.to_string()));
                }
            }
            wanted.topics.insert(topic.name.to_string());
        }
        wanted
    }

    /// Sends what makes lookupd's view of this node `wanted`, recording each step as it is
    /// acknowledged (so a failure part way leaves `self` true to what lookupd has).
    async fn sync(&mut self, peer: &mut LookupPeer, wanted: &Registrations) -> Result<(), PeerError> {
        for topic in wanted.topics.difference(&self.topics.clone()) {
            peer.register(topic, None).await?;
            self.topics.insert(topic.clone());
        }
        for (topic, channel) in wanted.channels.difference(&self.channels.clone()) {
            peer.register(topic, Some(channel)).await?;
            self.channels.insert((topic.clone(), channel.clone()));
        }
        // Channels first, each on its own, also for a topic going away: lookupd forgets an
        // `#ephemeral` channel only on its own UNREGISTER (nsqd sends one per channel too).
        for (topic, channel) in self.channels.clone().difference(&wanted.channels) {
            peer.unregister(topic, Some(channel)).await?;
            self.channels.remove(&(topic.clone(), channel.clone()));
        }
        for topic in self.topics.clone().difference(&wanted.topics) {
            peer.unregister(topic, None).await?;
            self.topics.remove(topic);
        }
        Ok(())
    }
}
