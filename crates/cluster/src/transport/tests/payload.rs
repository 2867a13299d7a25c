//! AppendEntries too large for one frame: openraft is asked to send fewer entries.

use bytes::Bytes;
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::AppendEntriesRequest;
use openraft::{BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

use super::harness::bounded;
use crate::transport::limits::FRAME_BYTES_MAX;
use crate::transport::Transport;
use crate::types::{Batches, GroupId, TypeConfig};

fn request(entry_bytes: &[usize]) -> AppendEntriesRequest<TypeConfig> {
    let entries = entry_bytes
        .iter()
        .enumerate()
        .map(|(i, &len)| Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), i as u64 + 1),
            payload: EntryPayload::Normal(Batches(Bytes::from(vec![0u8; len]))),
        })
        .collect();
    AppendEntriesRequest { vote: Vote::new_committed(1, 1), prev_log_id: None, entries, leader_commit: None }
}

/// Two entries that together overflow a frame give `PayloadTooLarge` hinting one entry; one
/// entry over a frame on its own cannot be split and is a network error. Nothing is sent (the
/// target address is never dialled).
#[tokio::test]
async fn oversize_append_entries_asks_for_fewer_entries() {
    bounded(async {
        let transport = Transport::new(1);
        let node = BasicNode { addr: "127.0.0.1:1".into() };
        let mut peer = transport.network(GroupId::Meta).new_client(2, &node).await;
        let option = RPCOption::new(std::time::Duration::from_secs(5));

        let half = FRAME_BYTES_MAX / 2 + 1;
        match peer.append_entries(request(&[half, half]), option.clone()).await {
            Err(RPCError::PayloadTooLarge(too_large)) => assert_eq!(too_large.entries_hint(), 1),
            other => panic!("two large entries: {other:?}"),
        }
        match peer.append_entries(request(&[FRAME_BYTES_MAX]), option).await {
            Err(RPCError::Network(_)) => {}
            other => panic!("one oversize entry: {other:?}"),
        }
        assert_eq!(transport.connections_opened(), 0);
    })
    .await;
}
