//! Every limit of the node-to-node transport, in one place, each with its reason.

use std::time::Duration;

/// Largest frame (everything after the length prefix: request id, kind, body).
///
/// An AppendEntries carries whole RecordBatch v2 entries: a default Kafka batch is at most
/// about 1 MiB (`max.message.bytes`), so 64 MiB holds dozens of them per round trip while a
/// hostile or corrupt length prefix can make a node reserve no more than this. A request that
/// would be larger is refused before it is sent; for AppendEntries the network answers
/// openraft with `PayloadTooLarge` so it resends fewer entries.
pub const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The request id and kind that follow the length prefix of every frame.
pub const FRAME_HEADER_AFTER_LEN_BYTES: usize = 8 + 1;

/// The length prefix itself.
pub const FRAME_LEN_BYTES: usize = 4;

/// Largest bincode body: what is left of a frame after its id and kind.
pub const BODY_BYTES_MAX: usize = FRAME_BYTES_MAX - FRAME_HEADER_AFTER_LEN_BYTES;

/// A call's default deadline when the caller gives none of its own (`client_write` and the
/// openraft network use their own): long enough for a leader to commit a write under fsync
/// on a busy shared disk, short enough that a dead peer is noticed by a waiting client.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long dialling a peer may take: on loopback or a LAN a connect takes well under a
/// millisecond, so a peer that has not answered in this long is down or cut off.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a TLS handshake between nodes may take, either side: TLS 1.3 is one round trip
/// and a few milliseconds of signing and verifying. A connection still in it after this long
/// is not a TLS peer (it sent nothing, or waits for a plaintext frame) and is closed, freeing
/// its connection slot.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The first wait before re-dialling a peer whose last dial failed; doubled per failure.
pub const REDIAL_BACKOFF_FIRST: Duration = Duration::from_millis(20);

/// The longest wait between two dials of a peer: a restarted node is found again within a
/// second, while a dead one costs one failed dial per second, not one per Raft heartbeat.
pub const REDIAL_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Frames queued for one connection's writer. Bounded so a stalled peer makes senders wait
/// (and time out) instead of growing memory; a node has a few thousand groups at most, each
/// with a handful of RPCs in flight per peer.
pub const WRITE_QUEUE_FRAMES_MAX: usize = 4096;

/// Requests one server connection runs at once: the reader stops reading when this many are
/// in flight, which pushes back on the peer over TCP.
pub const IN_FLIGHT_REQUESTS_PER_CONNECTION_MAX: usize = 4096;

/// Inbound connections one node serves at once: one per peer node is the normal case; this
/// only stops a flood of connections from exhausting memory or file descriptors.
pub const CONNECTIONS_MAX: usize = 1024;

/// Bytes read from a socket per read call when no larger frame is known to be coming.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

const _: () = assert!(FRAME_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(BODY_BYTES_MAX > 0);
const _: () = assert!(REDIAL_BACKOFF_FIRST.as_nanos() <= REDIAL_BACKOFF_MAX.as_nanos());
