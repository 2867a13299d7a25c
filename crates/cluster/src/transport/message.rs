//! What travels in a frame's body: one request ([`Rpc`]) or its reply ([`Reply`]), bincode 1.
//!
//! Every decode is bounded by [`BODY_BYTES_MAX`] (bincode's own limit), so a length inside a
//! body cannot make a node allocate more than the frame already holds.

use bincode::Options;
use bytes::Bytes;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::LogId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::frame::FrameKind;
use super::limits::{BODY_BYTES_MAX, FRAME_HEADER_AFTER_LEN_BYTES, FRAME_LEN_BYTES};
use crate::types::{Applied, Batches, GroupId, NodeId, TypeConfig};

/// A request from one node to another.
#[derive(Debug, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum Rpc {
    AppendEntries {
        group: GroupId,
        req: AppendEntriesRequest<TypeConfig>,
    },
    Vote {
        group: GroupId,
        req: VoteRequest<NodeId>,
    },
    InstallSnapshot {
        group: GroupId,
        req: InstallSnapshotRequest<TypeConfig>,
    },
    /// A client write sent to the node that leads `group` (forwarding).
    ClientWrite {
        group: GroupId,
        data: Batches,
    },
    /// A node-level request the transport does not interpret (join, status, ...): opaque bytes
    /// handed to the `RpcHandler`.
    Node(Vec<u8>),
}

/// The answer to one [`Rpc`], of the matching variant, or [`Reply::NoSuchGroup`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    ClientWrite(ClientWriteReply),
    Node(Result<Vec<u8>, String>),
    /// The Raft RPC's group does not run on the answering node (not yet created there, or
    /// already removed); the caller treats the node as unreachable for that group.
    NoSuchGroup,
}

/// The answer to a forwarded client write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientWriteReply {
    /// Committed and applied, at `log_id`.
    Applied { log_id: LogId<NodeId>, data: Applied },
    /// The answering node does not lead the group; the leader, when it knows one, is
    /// `leader_id` at `leader_addr`.
    NotLeader { leader_id: Option<NodeId>, leader_addr: Option<String> },
    /// The group does not run on the answering node.
    NoSuchGroup,
    /// The write failed on the leader (Raft stopped, storage error, ...).
    Error(String),
}

/// Why a body could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("bincode: {0}")]
pub struct CodecError(#[from] bincode::Error);

impl CodecError {
    /// The message is larger than a body may be.
    pub fn is_size_limit(&self) -> bool {
        matches!(*self.0, bincode::ErrorKind::SizeLimit)
    }
}

/// The one bincode configuration of both ends: varint lengths, and a limit that stops any
/// length inside a body from reserving more than a body may hold.
fn options() -> impl Options {
    bincode::DefaultOptions::new().with_limit(BODY_BYTES_MAX as u64).reject_trailing_bytes()
}

/// Encodes a request or reply body. A body over [`BODY_BYTES_MAX`] is an error.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, CodecError> {
    Ok(options().serialize(message)?)
}

/// Encodes a request or reply as a whole frame (`frame::encode`'s layout) with one exactly
/// sized allocation, serializing in place: an AppendEntries carries MiBs of batches, which a
/// body encoded first and then copied into its frame would copy twice more (and grow by
/// reallocation). A body over [`BODY_BYTES_MAX`] is an error.
pub fn encode_frame<T: Serialize>(id: u64, kind: FrameKind, message: &T) -> Result<Bytes, CodecError> {
    let body_len = options().serialized_size(message)? as usize;
    let frame_len = FRAME_HEADER_AFTER_LEN_BYTES + body_len;
    let mut out = Vec::with_capacity(FRAME_LEN_BYTES + frame_len);
    // Cannot truncate: the body limit keeps a frame under FRAME_BYTES_MAX, which fits a u32.
    out.extend_from_slice(&(frame_len as u32).to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.push(kind as u8);
    options().serialize_into(&mut out, message)?;
    Ok(Bytes::from(out))
}

/// Decodes a request or reply body; garbage is an error, never a panic.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    Ok(options().deserialize(body)?)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, Vote};

    use super::*;

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn group() -> GroupId {
        GroupId::Partition { topic: "orders".into(), partition: 3, topic_id: 7 }
    }

    /// An AppendEntries with a batch survives the round trip with group and payload intact.
    #[test]
    fn append_entries_round_trip() {
        let entry = Entry::<TypeConfig> {
            log_id: log_id(2, 5),
            payload: EntryPayload::Normal(Batches(Bytes::from_static(b"batch bytes"))),
        };
        let req = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(2, 1),
            prev_log_id: Some(log_id(2, 4)),
            entries: vec![entry.clone()],
            leader_commit: Some(log_id(1, 3)),
        };
        let body = encode(&Rpc::AppendEntries { group: group(), req }).unwrap();
        match decode::<Rpc>(&body).unwrap() {
            Rpc::AppendEntries { group: g, req } => {
                assert_eq!(g, group());
                assert_eq!(req.entries.len(), 1);
                assert_eq!(req.entries[0].log_id, entry.log_id);
                match &req.entries[0].payload {
                    EntryPayload::Normal(Batches(b)) => assert_eq!(&b[..], b"batch bytes"),
                    other => panic!("payload {other:?}"),
                }
                assert_eq!(req.prev_log_id, Some(log_id(2, 4)));
            }
            other => panic!("decoded {other:?}"),
        }
    }

    /// A frame encoded in one go is the frame of the separately encoded body.
    #[test]
    fn encode_frame_matches_body_then_frame() {
        let rpc = Rpc::ClientWrite { group: group(), data: Batches(Bytes::from(vec![7u8; 3000])) };
        let body = encode(&rpc).unwrap();
        let framed = encode_frame(42, FrameKind::Request, &rpc).unwrap();
        let mut expected = bytes::BytesMut::new();
        crate::transport::frame::encode(42, FrameKind::Request, &body, &mut expected).unwrap();
        assert_eq!(&framed[..], &expected[..]);
    }

    /// Replies, errors included, round-trip (openraft errors carry `AnyError`s).
    #[test]
    fn replies_round_trip() {
        let fatal: RaftError<NodeId> = RaftError::Fatal(openraft::error::Fatal::Stopped);
        let body = encode(&Reply::Vote(Err(fatal.clone()))).unwrap();
        assert!(matches!(decode::<Reply>(&body).unwrap(), Reply::Vote(Err(e)) if e == fatal));

        let not_leader = ClientWriteReply::NotLeader { leader_id: Some(2), leader_addr: Some("127.0.0.1:9".into()) };
        let body = encode(&Reply::ClientWrite(not_leader.clone())).unwrap();
        assert!(matches!(decode::<Reply>(&body).unwrap(), Reply::ClientWrite(r) if r == not_leader));

        let applied =
            ClientWriteReply::Applied { log_id: log_id(3, 9), data: Applied { offsets: Some((10, 12)), reply: None } };
        let body = encode(&Reply::ClientWrite(applied.clone())).unwrap();
        assert!(matches!(decode::<Reply>(&body).unwrap(), Reply::ClientWrite(r) if r == applied));
    }

    /// Garbage, a truncated body, and trailing bytes are errors; a huge inner length is
    /// refused by the limit instead of being reserved.
    #[test]
    fn garbage_bodies_are_errors() {
        let body = encode(&Rpc::Node(b"join".to_vec())).unwrap();
        assert!(decode::<Rpc>(&body[..body.len() - 1]).is_err());
        let mut trailing = body.clone();
        trailing.push(0);
        assert!(decode::<Rpc>(&trailing).is_err());
        assert!(decode::<Rpc>(&[0xff; 16]).is_err());
        // Variant Node (4), then a varint length of u64::MAX for its bytes.
        let huge = [4u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(decode::<Rpc>(&huge).is_err());
    }
}
