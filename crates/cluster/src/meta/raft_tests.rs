//! `MetaStateMachine` inside a real single-node openraft `Raft`, over a test-only in-memory
//! log store: replies reach `client_write`, snapshots are built by openraft's trigger, and a
//! restart over the same log with a fresh state machine rebuilds the same state.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{BasicNode, Config, Entry, LogId, OptionalSend, RaftLogReader, StorageError, Vote};

use super::command::{MetaCommand, MetaReply};
use super::state::ClusterState;
use super::state_machine::MetaStateMachine;
use super::state_tests::{create, register};
use crate::types::{NodeId, Raft, TypeConfig};

/// Bounds every wait: a single node elects itself and commits in milliseconds.
const WAIT_TIMEOUT: Duration = Duration::from_secs(20);

/// The log, vote and commit point, kept across a "restart" (a new `Raft` over a clone).
#[derive(Default)]
struct Log {
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    purged: Option<LogId<NodeId>>,
}

#[derive(Clone, Default)]
struct MemLog(Arc<Mutex<Log>>);

impl MemLog {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.lock().expect("log lock")
    }
}

impl RaftLogReader<TypeConfig> for MemLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.log().entries.range(range).map(|(_, entry)| entry.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for MemLog {
    type LogReader = MemLog;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let log = self.log();
        let last = log.entries.values().next_back().map(|entry| entry.log_id).or(log.purged);
        Ok(LogState { last_purged_log_id: log.purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.log().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.log().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        self.log().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.log().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.log().entries.extend(entries.into_iter().map(|entry| (entry.log_id.index, entry)));
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.log().entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut log = self.log();
        log.entries = log.entries.split_off(&(log_id.index + 1));
        log.purged = Some(log_id);
        Ok(())
    }
}

/// A single node never sends an RPC; every peer is unreachable.
struct NoPeers;

fn unreachable<E: std::error::Error>() -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other("single-node test has no peers")))
}

impl RaftNetwork<TypeConfig> for NoPeers {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(unreachable())
    }
}

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeers;

    async fn new_client(&mut self, _target: NodeId, _node: &BasicNode) -> Self::Network {
        NoPeers
    }
}

async fn start(log: &MemLog, machine: MetaStateMachine) -> Raft {
    let config =
        Config { heartbeat_interval: 50, election_timeout_min: 150, election_timeout_max: 300, ..Default::default() };
    let config = Arc::new(config.validate().expect("valid config"));
    Raft::new(1, config, NoPeers, log.clone(), machine).await.expect("raft starts")
}

async fn propose(raft: &Raft, command: MetaCommand) -> MetaReply {
    let data = command.encode(0).expect("encode");
    let response = raft.client_write(data).await.expect("committed");
    MetaReply::from_applied(&response.data).expect("a reply")
}

#[tokio::test]
async fn commands_commit_through_raft_and_a_restart_rebuilds_the_state() {
    // Proves the state machine under openraft itself: client_write returns apply's reply,
    // the watch follows, openraft builds a snapshot, and a new Raft over the same log with an
    // empty state machine replays it to the same state.
    tokio::time::timeout(WAIT_TIMEOUT, async {
        let log = MemLog::default();
        let machine = MetaStateMachine::new();
        let mut watch = machine.state_watch();
        let raft = start(&log, machine).await;
        raft.initialize(BTreeSet::from([1])).await.expect("initialize");
        raft.wait(Some(WAIT_TIMEOUT)).current_leader(1, "node 1 leads").await.expect("leader");

        assert_eq!(propose(&raft, MetaCommand::InitCluster { cluster_id: "c".into() }).await, MetaReply::Ok);
        assert_eq!(propose(&raft, register(1, 10)).await, MetaReply::Ok);
        assert_eq!(propose(&raft, create("t", vec![vec![1], vec![1]])).await, MetaReply::TopicCreated);
        assert_eq!(propose(&raft, create("t", vec![vec![1]])).await, MetaReply::TopicExists);
        let block = propose(&raft, MetaCommand::AllocateProducerIds { count: 100 }).await;
        assert_eq!(block, MetaReply::ProducerIds { first: 0, count: 100 });
        watch.wait_for(|state| state.topics.contains_key("t")).await.expect("watch sees the topic");

        raft.trigger().snapshot().await.expect("trigger snapshot");
        let last = raft.metrics().borrow().last_applied.expect("applied");
        raft.wait(Some(WAIT_TIMEOUT)).snapshot(last, "snapshot built").await.expect("snapshot");
        let before: ClusterState = (**watch.borrow()).clone();
        raft.shutdown().await.expect("shutdown");

        let fresh = MetaStateMachine::new();
        let mut rebuilt = fresh.state_watch();
        let raft = start(&log, fresh).await;
        rebuilt.wait_for(|state| *state.as_ref() == before).await.expect("state rebuilt from the log");
        raft.wait(Some(WAIT_TIMEOUT)).current_leader(1, "node 1 leads again").await.expect("leader");
        let block = propose(&raft, MetaCommand::AllocateProducerIds { count: 100 }).await;
        assert_eq!(block, MetaReply::ProducerIds { first: 100, count: 100 }, "no block is handed out twice");
        raft.shutdown().await.expect("shutdown");
    })
    .await
    .expect("test timed out")
}
