//! A restarted replica stands for election only once it has caught up. openraft 0.9 has no
//! pre-vote: a node whose log is behind can time out first after a leader dies, call an
//! election it cannot win (the others refuse its shorter log) and push everyone to a new
//! term, so the up-to-date follower waits another election timeout. The failover test showed
//! it after restarts (kill -9 to first produce: 1.4 s typical, 3.9 s when it happened). So a
//! group opened from an existing log starts with elections off and turns them on once a
//! leader has brought it up to date (everything it holds is applied), or after
//! `ALONE_GRACE` with no leader at all (a whole cluster restarting must still elect).
//!
//! The leader it heard from may die before it has caught up: its last entries then wait for
//! a commit index nobody will send. Holding on would leave the group leaderless when every
//! other voter is in the same state (two nodes restarted one after the other, the third
//! killed: a sarama test stalled 30 s on it), so the hold also ends once that leader is known
//! dead (`PeerDeaths`) or has been silent for `ALONE_GRACE` (cut off, stopped).

use super::failover::PeerDeaths;
use openraft::ServerState;
use sluice_cluster::types::Raft;
use std::sync::Arc;
use std::time::Duration;

/// How long a restarted replica that hears from no leader waits before it may stand: a few
/// election rounds of the default timers, so a cluster restarted as a whole elects quickly.
const ALONE_GRACE: Duration = Duration::from_secs(2);
/// Upper bound on waiting to catch up with a leader before standing anyway.
const CATCH_UP_MAX: Duration = Duration::from_secs(30);
/// How often a replica waiting on its leader checks that the leader is still there (metrics
/// do not change when a leader merely goes quiet).
const LEADER_CHECK: Duration = Duration::from_millis(100);

/// Holds elections off for `raft` (a group opened from an existing log) until it caught up,
/// or the leader it waits on is dead or silent.
pub fn hold_elections_until_caught_up(raft: Raft, deaths: Arc<PeerDeaths>) {
    raft.runtime_config().elect(false);
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut metrics = raft.metrics();
        loop {
            let (caught_up, leader) = {
                let m = metrics.borrow_and_update();
                let is_leader = m.state == ServerState::Leader;
                let leader = m.current_leader.filter(|l| *l != m.id);
                let applied = m.last_applied.map(|l| l.index);
                (is_leader || (leader.is_some() && applied >= m.last_log_index), leader)
            };
            let waited = started.elapsed();
            let leader_gone = match leader {
                Some(l) => {
                    // Never heard from since the start (a leader named by the vote on disk):
                    // silent for as long as this has waited.
                    let quiet = leader_silent_for(&raft).await.unwrap_or(waited);
                    deaths.is_dead(l) || quiet >= ALONE_GRACE
                }
                None => waited >= ALONE_GRACE,
            };
            if caught_up || leader_gone || waited >= CATCH_UP_MAX {
                raft.runtime_config().elect(true);
                return;
            }
            let wait = match leader {
                Some(_) => LEADER_CHECK,
                None => ALONE_GRACE - waited,
            };
            if tokio::time::timeout(wait, metrics.changed()).await.is_ok_and(|r| r.is_err()) {
                return;
            }
        }
    });
}

/// How long ago this replica last heard from its leader: its vote is refreshed by every
/// AppendEntries (openraft's leader lease is measured the same way). None when the group has
/// stopped.
async fn leader_silent_for(raft: &Raft) -> Option<Duration> {
    raft.with_raft_state(|st| st.vote_last_modified().map(|at| at.elapsed())).await.ok().flatten()
}
