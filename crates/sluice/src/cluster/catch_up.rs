//! A restarted replica stands for election only once it has caught up. openraft 0.9 has no
//! pre-vote: a node whose log is behind can time out first after a leader dies, call an
//! election it cannot win (the others refuse its shorter log) and push everyone to a new
//! term, so the up-to-date follower waits another election timeout. The failover test showed
//! it after restarts (kill -9 to first produce: 1.4 s typical, 3.9 s when it happened). So a
//! group opened from an existing log starts with elections off and turns them on once a
//! leader has brought it up to date (everything it holds is applied), or after
//! `ALONE_GRACE` with no leader at all (a whole cluster restarting must still elect).

use openraft::ServerState;
use sluice_cluster::types::Raft;
use std::time::Duration;

/// How long a restarted replica that hears from no leader waits before it may stand: a few
/// election rounds of the default timers, so a cluster restarted as a whole elects quickly.
const ALONE_GRACE: Duration = Duration::from_secs(2);
/// Upper bound on waiting to catch up with a leader before standing anyway.
const CATCH_UP_MAX: Duration = Duration::from_secs(30);

/// Holds elections off for `raft` (a group opened from an existing log) until it caught up.
pub fn hold_elections_until_caught_up(raft: Raft) {
    raft.runtime_config().elect(false);
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut metrics = raft.metrics();
        loop {
            let (caught_up, leader_seen) = {
                let m = metrics.borrow_and_update();
                let leader_seen = m.current_leader.is_some_and(|l| l != m.id) || m.state == ServerState::Leader;
                let applied = m.last_applied.map(|l| l.index);
                (leader_seen && applied >= m.last_log_index, leader_seen)
            };
            let waited = started.elapsed();
            if caught_up || (!leader_seen && waited >= ALONE_GRACE) || waited >= CATCH_UP_MAX {
                raft.runtime_config().elect(true);
                return;
            }
            let remaining = if leader_seen { CATCH_UP_MAX - waited } else { ALONE_GRACE - waited };
            if tokio::time::timeout(remaining, metrics.changed()).await.is_ok_and(|r| r.is_err()) {
                return;
            }
        }
    });
}
