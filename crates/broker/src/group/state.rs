//! One consumer group's membership state machine, as Kafka's classic group coordinator
//! runs it: Empty → PreparingRebalance → CompletingRebalance → Stable, back to
//! PreparingRebalance on any membership or protocol change, Dead when deleted.
//! Pure in-memory logic; waiting JoinGroup/SyncGroup callers are oneshot senders that
//! are completed here, and every timeout is an entry in the coordinator's one heap.

use super::coordinator::{JoinReply, JoinRequest, JoinResult, JoinedMember, SyncReply, SyncRequest, SyncResult};
use super::initial_delay::InitialDelay;
use super::timeouts::{Deadlines, Kind};
use super::GroupError;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Members per group: bounds memory and the JoinGroup response a leader receives
/// (Kafka's `group.max.size` is unbounded by default; a thousand consumers per group
/// is far past any real deployment on one node).
pub const MEMBERS_MAX: usize = 1_000;
/// Member ids handed out with `MEMBER_ID_REQUIRED` and not yet used, per group.
pub const PENDING_MEMBERS_MAX: usize = 1_000;
/// Protocols one member may offer (clients offer one to three assignors).
pub const PROTOCOLS_MAX: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka uses in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub protocol_type: String,
    /// Offered protocols, most preferred first, with this member's metadata for each.
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// What the leader assigned in the last completed SyncGroup.
    pub assignment: Bytes,
    /// A JoinGroup waiting for the rebalance to complete.
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    /// A SyncGroup waiting for the leader's assignment.
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
    /// When the session expires unless a heartbeat (or join, sync, commit) moves it.
    pub session_deadline: Instant,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

pub struct Group {
    pub id: Arc<str>,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// Ordered so leader election and protocol votes are deterministic.
    pub members: BTreeMap<String, Member>,
    /// group.instance.id → current member id.
    pub static_members: HashMap<String, String>,
    /// Member ids awaiting their second JoinGroup, with their expiry.
    pub pending: HashMap<String, Instant>,
    /// When the group last became Empty (ms since epoch): offsets retention counts from it.
    pub empty_since_ms: Option<i64>,
    /// End of the current join or sync phase; a heap entry fires only if it still matches,
    /// so the sync-phase deadline of a generation cannot cut short the next join phase.
    pub rebalance_deadline: Option<Instant>,
    /// `group.initial.rebalance.delay.ms`, applied when a rebalance starts from Empty.
    initial_rebalance_delay: Duration,
    /// Set while the join phase of a rebalance that started from Empty is held back.
    initial_delay: Option<InitialDelay>,
}

impl Group {
    pub fn new(id: &str, now_ms: i64, initial_rebalance_delay: Duration) -> Group {
        Group {
            id: Arc::from(id),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            empty_since_ms: Some(now_ms),
            rebalance_deadline: None,
            initial_rebalance_delay,
            initial_delay: None,
        }
    }

    pub fn join(&mut self, req: JoinRequest, now: Instant, deadlines: &mut Deadlines) -> JoinReply {
        if self.state == GroupState::Dead {
            return JoinReply::error(GroupError::CoordinatorNotAvailable, &req.member_id);
        }
        if !self.supports(&req.protocol_type, &req.protocols, &req.member_id) {
            return JoinReply::error(GroupError::InconsistentGroupProtocol, &req.member_id);
        }
        if req.member_id.is_empty() {
            self.join_new(req, now, deadlines)
        } else {
            self.join_known(req, now, deadlines)
        }
    }

    /// Kafka's check: the member's protocol type matches and it offers at least one
    /// protocol every other member offers too.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)], member_id: &str) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        let others: Vec<&Member> = self.members.values().filter(|m| m.id != member_id).collect();
        if others.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| others.iter().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
    }

    fn join_new(&mut self, req: JoinRequest, now: Instant, deadlines: &mut Deadlines) -> JoinReply {
        if let Some(instance) = req.instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static(old_id, req, now, deadlines);
            }
        }
        if self.members.len() + self.pending.len() >= MEMBERS_MAX {
            return JoinReply::error(GroupError::GroupMaxSizeReached, "");
        }
        let member_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
        if req.require_known_member_id && req.instance_id.is_none() {
            if self.pending.len() >= PENDING_MEMBERS_MAX {
                return JoinReply::error(GroupError::GroupMaxSizeReached, "");
            }
            let expiry = now + req.session_timeout;
            self.pending.insert(member_id.clone(), expiry);
            deadlines.push(expiry, &self.id, Kind::Pending(member_id.clone()));
            return JoinReply::error(GroupError::MemberIdRequired, &member_id);
        }
        self.add_member_and_rebalance(member_id, req, now, deadlines)
    }

    fn join_known(&mut self, req: JoinRequest, now: Instant, deadlines: &mut Deadlines) -> JoinReply {
        let member_id = req.member_id.clone();
        if self.pending.remove(&member_id).is_some() {
            return self.add_member_and_rebalance(member_id, req, now, deadlines);
        }
        if let Some(err) = self.check_instance(&member_id, req.instance_id.as_deref()) {
            return JoinReply::error(err, &member_id);
        }
        let Some(member) = self.members.get_mut(&member_id) else {
            return JoinReply::error(GroupError::UnknownMemberId, &member_id);
        };
        let changed = member.protocols != req.protocols;
        update_member(member, &req, now);
        deadlines.push(member.session_deadline, &self.id, Kind::Session(member_id.clone()));
        match self.state {
            GroupState::PreparingRebalance => {
                let (tx, rx) = oneshot::channel();
                member.join_waiter = Some(tx);
                self.try_complete_join(now, deadlines);
                JoinReply::Wait(rx)
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if !changed && (self.state == GroupState::CompletingRebalance || !self.is_leader(&member_id)) =>
            {
                JoinReply::Now(self.join_result(&member_id))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(&member_id) {
                    m.join_waiter = Some(tx);
                }
                self.prepare_rebalance(now, deadlines);
                JoinReply::Wait(rx)
            }
        }
    }

    /// A static member restarted with a new member id: fence the old id and, when the
    /// group is stable and nothing changed, hand back the current assignment without a rebalance.
    fn replace_static(
        &mut self,
        old_id: String,
        req: JoinRequest,
        now: Instant,
        deadlines: &mut Deadlines,
    ) -> JoinReply {
        let Some(mut member) = self.members.remove(&old_id) else {
            if let Some(instance) = &req.instance_id {
                self.static_members.remove(instance);
            }
            return self.join_new(req, now, deadlines);
        };
        let new_id = format!("{}-{}", req.client_id, uuid::Uuid::new_v4());
        if let Some(tx) = member.join_waiter.take() {
            let _ = tx.send(JoinResult::failed(GroupError::FencedInstanceId, &old_id));
        }
        if let Some(tx) = member.sync_waiter.take() {
            let _ = tx.send(SyncResult::failed(GroupError::FencedInstanceId));
        }
        let changed = member.protocols != req.protocols;
        member.id = new_id.clone();
        update_member(&mut member, &req, now);
        deadlines.push(member.session_deadline, &self.id, Kind::Session(new_id.clone()));
        self.members.insert(new_id.clone(), member);
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        if self.state == GroupState::Stable && !changed {
            let mut result = self.join_result(&new_id);
            result.skip_assignment = self.is_leader(&new_id);
            return JoinReply::Now(result);
        }
        let (tx, rx) = oneshot::channel();
        if let Some(m) = self.members.get_mut(&new_id) {
            m.join_waiter = Some(tx);
        }
        if self.state == GroupState::PreparingRebalance {
            self.try_complete_join(now, deadlines);
        } else {
            self.prepare_rebalance(now, deadlines);
        }
        JoinReply::Wait(rx)
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        req: JoinRequest,
        now: Instant,
        deadlines: &mut Deadlines,
    ) -> JoinReply {
        if self.members.len() >= MEMBERS_MAX {
            return JoinReply::error(GroupError::GroupMaxSizeReached, &member_id);
        }
        let (tx, rx) = oneshot::channel();
        let mut member = Member {
            id: member_id.clone(),
            instance_id: req.instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            protocol_type: String::new(),
            protocols: Vec::new(),
            session_timeout: req.session_timeout,
            rebalance_timeout: req.rebalance_timeout,
            assignment: Bytes::new(),
            join_waiter: Some(tx),
            sync_waiter: None,
            session_deadline: now,
        };
        update_member(&mut member, &req, now);
        deadlines.push(member.session_deadline, &self.id, Kind::Session(member_id.clone()));
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), member_id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member_id.clone());
        }
        self.members.insert(member_id, member);
        self.empty_since_ms = None;
        // As Kafka: only a new group's first rebalance is extended by newcomers.
        if let Some(delay) = self.initial_delay.as_mut().filter(|_| self.generation == 0) {
            delay.member_joined = true;
        }
        if self.state == GroupState::PreparingRebalance {
            self.try_complete_join(now, deadlines);
        } else {
            self.prepare_rebalance(now, deadlines);
        }
        JoinReply::Wait(rx)
    }

    pub fn sync(&mut self, req: SyncRequest, now: Instant) -> SyncReply {
        if let Err(e) = self.check_member(&req.member_id, req.instance_id.as_deref(), req.generation) {
            return SyncReply::Now(SyncResult::failed(e));
        }
        if req.protocol_type.as_ref().is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || req.protocol_name.as_ref().is_some_and(|p| Some(p) != self.protocol.as_ref())
        {
            return SyncReply::Now(SyncResult::failed(GroupError::InconsistentGroupProtocol));
        }
        let is_leader = self.is_leader(&req.member_id);
        let Some(member) = self.members.get_mut(&req.member_id) else {
            return SyncReply::Now(SyncResult::failed(GroupError::UnknownMemberId));
        };
        member.session_deadline = now + member.session_timeout;
        match self.state {
            GroupState::PreparingRebalance => SyncReply::Now(SyncResult::failed(GroupError::RebalanceInProgress)),
            GroupState::Stable => SyncReply::Now(self.sync_result(&req.member_id)),
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                member.sync_waiter = Some(tx);
                if is_leader {
                    let mut assigned: HashMap<String, Bytes> = req.assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = assigned.remove(&m.id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let result = self.sync_result(&id);
                        if let Some(tx) = self.members.get_mut(&id).and_then(|m| m.sync_waiter.take()) {
                            let _ = tx.send(result);
                        }
                    }
                }
                SyncReply::Wait(rx)
            }
            GroupState::Empty | GroupState::Dead => SyncReply::Now(SyncResult::failed(GroupError::UnknownMemberId)),
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        self.check_member(member_id, instance_id, generation)?;
        if let Some(m) = self.members.get_mut(member_id) {
            m.session_deadline = now + m.session_timeout;
        }
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
        }
    }

    /// Removes one member named by id and/or instance id (LeaveGroup).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        deadlines: &mut Deadlines,
    ) -> Result<(), GroupError> {
        let id = match instance_id {
            Some(instance) => {
                let current = self.static_members.get(instance).ok_or(GroupError::UnknownMemberId)?;
                if !member_id.is_empty() && member_id != current {
                    return Err(GroupError::FencedInstanceId);
                }
                current.clone()
            }
            None if self.pending.remove(member_id).is_some() => return Ok(()),
            None => member_id.to_string(),
        };
        if !self.members.contains_key(&id) {
            return Err(GroupError::UnknownMemberId);
        }
        self.remove_member(&id, now, deadlines);
        Ok(())
    }

    /// Checks a member may act in `generation` (SyncGroup, Heartbeat).
    pub fn check_member(&self, member_id: &str, instance_id: Option<&str>, generation: i32) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if let Some(err) = self.check_instance(member_id, instance_id) {
            return Err(err);
        }
        if !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    /// Checks an OffsetCommit, as Kafka does: a generation below zero is a standalone
    /// (non-group) commit, allowed only while the group has no members.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if let Some(err) = self.check_instance(member_id, instance_id) {
            return Err(err);
        }
        if generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        let Some(m) = self.members.get_mut(member_id) else { return Err(GroupError::UnknownMemberId) };
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        m.session_deadline = now + m.session_timeout;
        Ok(())
    }

    fn check_instance(&self, member_id: &str, instance_id: Option<&str>) -> Option<GroupError> {
        let instance = instance_id?;
        match self.static_members.get(instance) {
            Some(current) if current != member_id => Some(GroupError::FencedInstanceId),
            Some(_) => None,
            None => Some(GroupError::UnknownMemberId),
        }
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    pub fn remove_member(&mut self, member_id: &str, now: Instant, deadlines: &mut Deadlines) {
        let Some(mut member) = self.members.remove(member_id) else { return };
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if let Some(tx) = member.join_waiter.take() {
            let _ = tx.send(JoinResult::failed(GroupError::UnknownMemberId, member_id));
        }
        if let Some(tx) = member.sync_waiter.take() {
            let _ = tx.send(SyncResult::failed(GroupError::UnknownMemberId));
        }
        if self.is_leader(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now, deadlines),
            GroupState::PreparingRebalance => self.try_complete_join(now, deadlines),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    fn prepare_rebalance(&mut self, now: Instant, deadlines: &mut Deadlines) {
        for m in self.members.values_mut() {
            if let Some(tx) = m.sync_waiter.take() {
                let _ = tx.send(SyncResult::failed(GroupError::RebalanceInProgress));
            }
        }
        let from_empty = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        let rebalance_timeout = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
        self.initial_delay =
            InitialDelay::start(self.initial_rebalance_delay, rebalance_timeout).filter(|_| from_empty);
        if let Some(delay) = self.initial_delay {
            self.arm_deadline(now + delay.current(), deadlines);
            return;
        }
        self.arm_rebalance_deadline(now, deadlines);
        self.try_complete_join(now, deadlines);
    }

    /// Completes the join phase once every member (and every pending member id) has joined.
    /// Never during the initial delay: only its deadline ends that.
    pub fn try_complete_join(&mut self, now: Instant, deadlines: &mut Deadlines) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.pending.is_empty()
            && self.members.values().all(|m| m.join_waiter.is_some())
        {
            self.complete_join(now, deadlines);
        }
    }

    /// The rebalance timeout fired: members that did not rejoin (or, in the sync phase,
    /// did not sync) are removed and the rebalance goes on without them.
    pub fn rebalance_expired(&mut self, generation: i32, at: Instant, now: Instant, deadlines: &mut Deadlines) {
        if generation != self.generation || self.rebalance_deadline != Some(at) {
            return;
        }
        self.rebalance_deadline = None;
        if let Some(delay) = self.initial_delay.take() {
            self.initial_delay_expired(delay, now, deadlines);
            return;
        }
        match self.state {
            GroupState::PreparingRebalance => {
                self.pending.clear();
                let late: Vec<String> =
                    self.members.values().filter(|m| m.join_waiter.is_none()).map(|m| m.id.clone()).collect();
                for id in late {
                    self.drop_member_quietly(&id);
                }
                self.complete_join(now, deadlines);
            }
            GroupState::CompletingRebalance => {
                let late: Vec<String> =
                    self.members.values().filter(|m| m.sync_waiter.is_none()).map(|m| m.id.clone()).collect();
                for id in late {
                    self.drop_member_quietly(&id);
                }
                self.prepare_rebalance(now, deadlines);
            }
            _ => {}
        }
    }

    /// A window of the initial delay ended: open the next one if a member joined during
    /// it, else complete the join phase. Members that got `MEMBER_ID_REQUIRED` and have not
    /// joined yet are kept (as Kafka keeps them): their join starts the next rebalance.
    fn initial_delay_expired(&mut self, delay: InitialDelay, now: Instant, deadlines: &mut Deadlines) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        if let Some(next) = delay.next() {
            self.initial_delay = Some(next);
            self.arm_deadline(now + next.current(), deadlines);
            return;
        }
        let late: Vec<String> =
            self.members.values().filter(|m| m.join_waiter.is_none()).map(|m| m.id.clone()).collect();
        for id in late {
            self.drop_member_quietly(&id);
        }
        self.complete_join(now, deadlines);
    }

    fn drop_member_quietly(&mut self, id: &str) {
        if let Some(m) = self.members.remove(id) {
            tracing::info!(group = %self.id, member = id, "member removed: did not rejoin within the rebalance timeout");
            if let Some(instance) = &m.instance_id {
                self.static_members.remove(instance);
            }
        }
        if self.is_leader(id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// A member's session deadline fired; returns whether the member was evicted.
    pub fn session_expired(&mut self, member_id: &str, now: Instant, deadlines: &mut Deadlines) -> bool {
        let Some(m) = self.members.get_mut(member_id) else { return false };
        if m.session_deadline > now {
            deadlines.push(m.session_deadline, &self.id, Kind::Session(member_id.to_string()));
            return false;
        }
        if m.join_waiter.is_some() || m.sync_waiter.is_some() {
            // Waiting on the group itself: the rebalance timeout bounds it instead.
            m.session_deadline = now + m.session_timeout;
            deadlines.push(m.session_deadline, &self.id, Kind::Session(member_id.to_string()));
            return false;
        }
        tracing::info!(group = %self.id, member = member_id, "member evicted: session timed out");
        self.remove_member(member_id, now, deadlines);
        true
    }

    pub fn pending_expired(&mut self, member_id: &str, at: Instant, now: Instant, deadlines: &mut Deadlines) {
        if self.pending.get(member_id).is_some_and(|expiry| *expiry <= at) {
            self.pending.remove(member_id);
            self.try_complete_join(now, deadlines);
        }
    }

    fn complete_join(&mut self, now: Instant, deadlines: &mut Deadlines) {
        self.generation = self.generation.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            self.empty_since_ms = Some(super::coordinator::now_ms());
            tracing::info!(group = %self.id, generation = self.generation, "group rebalanced: no members left");
            return;
        }
        self.protocol = self.select_protocol();
        if self.leader.as_ref().is_none_or(|l| !self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        tracing::info!(group = %self.id, generation = self.generation, members = ?ids,
            leader = self.leader.as_deref().unwrap_or(""), protocol = self.protocol.as_deref().unwrap_or(""),
            "group rebalanced");
        for id in ids {
            let result = self.join_result(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.session_deadline = now + m.session_timeout;
                if let Some(tx) = m.join_waiter.take() {
                    let _ = tx.send(result);
                }
            }
        }
        self.arm_rebalance_deadline(now, deadlines);
    }

    /// Bounds the phase that starts now by the longest rebalance timeout of the members.
    fn arm_rebalance_deadline(&mut self, now: Instant, deadlines: &mut Deadlines) {
        let timeout = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
        self.arm_deadline(now + timeout, deadlines);
    }

    /// Ends the current phase (or initial-delay window) at `at`, superseding earlier deadlines.
    fn arm_deadline(&mut self, at: Instant, deadlines: &mut Deadlines) {
        self.rebalance_deadline = Some(at);
        deadlines.push(at, &self.id, Kind::Rebalance(self.generation));
    }

    /// Each member votes for its most preferred protocol among those all members offer.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let common: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| self.members.values().all(|m| m.protocols.iter().any(|(p, _)| p == *n)))
            .collect();
        let mut votes: Vec<(&String, usize)> = common.iter().map(|n| (*n, 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(p, _)| common.contains(&p)) {
                if let Some(v) = votes.iter_mut().find(|(n, _)| *n == name) {
                    v.1 += 1;
                }
            }
        }
        let best = votes.iter().map(|(_, v)| *v).max()?;
        votes.into_iter().find(|(_, v)| *v == best).map(|(n, _)| n.clone())
    }

    fn join_result(&self, member_id: &str) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = if self.is_leader(member_id) {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    fn sync_result(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default(),
        }
    }

    /// Topics the members subscribe to, from the consumer protocol's subscription
    /// metadata (version: i16, topics: [string]); unparsable metadata yields nothing.
    /// This node stops coordinating the group (in a cluster, it lost its offsets partition):
    /// every waiting JoinGroup and SyncGroup is answered `NOT_COORDINATOR`, as Kafka's
    /// `onGroupUnloaded` does, so its members find the new coordinator at once.
    pub fn unload(&mut self) {
        for member in self.members.values_mut() {
            if let Some(tx) = member.join_waiter.take() {
                let _ = tx.send(JoinResult::failed(GroupError::NotCoordinator, &member.id));
            }
            if let Some(tx) = member.sync_waiter.take() {
                let _ = tx.send(SyncResult::failed(GroupError::NotCoordinator));
            }
        }
    }

    pub fn subscribed_topics(&self) -> Vec<String> {
        let mut topics = Vec::new();
        if self.protocol_type.as_deref() != Some("consumer") {
            return topics;
        }
        let protocol = self.protocol.clone().unwrap_or_default();
        for m in self.members.values() {
            let meta = m.metadata_for(&protocol);
            let mut b: &[u8] = &meta;
            let Some(count) = b.get(2..6).map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]])) else { continue };
            b = &b[6..];
            for _ in 0..count.clamp(0, 10_000) {
                let Some(len) = b.get(..2).map(|l| i16::from_be_bytes([l[0], l[1]]).max(0) as usize) else { break };
                let Some(name) = b.get(2..2 + len) else { break };
                topics.push(String::from_utf8_lossy(name).into_owned());
                b = &b[2 + len..];
            }
        }
        topics
    }
}

fn update_member(member: &mut Member, req: &JoinRequest, now: Instant) {
    member.protocol_type = req.protocol_type.clone();
    member.protocols = req.protocols.clone();
    member.session_timeout = req.session_timeout;
    member.rebalance_timeout = req.rebalance_timeout;
    member.client_id = req.client_id.clone();
    member.client_host = req.client_host.clone();
    member.session_deadline = now + req.session_timeout;
}
