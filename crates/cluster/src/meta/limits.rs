//! Every bound the metadata group enforces, in one place. A command past a bound is answered
//! `Invalid` and changes nothing, on every node alike (the checks are part of `apply`).

/// Kafka's limit: 249, so that `<topic>-<partition>` and suffixes fit in 255-byte file names.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Partitions one topic may have; far above real use, low enough that one command stays small.
pub const PARTITIONS_PER_TOPIC_MAX: usize = 10_000;
/// Partitions the whole cluster may hold: bounds the state (and its snapshots) in memory.
pub const PARTITIONS_MAX: usize = 200_000;
/// Replicas of one partition (Kafka's replication factor is an i16; real clusters use 3 to 5).
pub const REPLICAS_PER_PARTITION_MAX: usize = 16;
/// Nodes the cluster may register.
pub const NODES_MAX: usize = 10_000;
/// Kafka's node ids are int32 on the wire (Metadata, ListOffsets...), so a node id above this
/// could not be named to a Kafka client.
pub const NODE_ID_MAX: u64 = i32::MAX as u64;
/// Bytes of one listener address (`host:port`; a DNS name is at most 253 bytes).
pub const ADDR_BYTES_MAX: usize = 1024;
/// Kafka listeners one node may register.
pub const KAFKA_LISTENERS_MAX: usize = 16;
/// Bytes of a rack name.
pub const RACK_BYTES_MAX: usize = 255;
/// Bytes of the cluster id (Kafka's is a 22-character base64 UUID).
pub const CLUSTER_ID_BYTES_MAX: usize = 64;
/// Config entries of one topic (Kafka defines about 30 topic configs).
pub const CONFIGS_PER_TOPIC_MAX: usize = 256;
/// Bytes of one config name.
pub const CONFIG_NAME_BYTES_MAX: usize = 255;
/// Bytes of one config value.
pub const CONFIG_VALUE_BYTES_MAX: usize = 16 * 1024;
/// Producer ids one block may hold: Kafka hands out blocks of 1000; the bound keeps a few
/// commands from exhausting the i64 id space.
pub const PRODUCER_ID_BLOCK_COUNT_MAX: i64 = 1 << 20;
/// Bytes of one encoded command (a record's value): a topic of `PARTITIONS_PER_TOPIC_MAX`
/// partitions with `REPLICAS_PER_PARTITION_MAX` replicas each is about 2 MiB of JSON.
pub const COMMAND_BYTES_MAX: usize = 8 << 20;
/// Bytes of the one batch that carries a command: the command plus the batch and record headers.
pub const COMMAND_BATCH_BYTES_MAX: usize = COMMAND_BYTES_MAX + 1024;
/// Bytes of a snapshot (the whole state as JSON): `PARTITIONS_MAX` partitions of a few hundred
/// bytes each is well under it.
pub const SNAPSHOT_BYTES_MAX: usize = 256 << 20;

const _: () = assert!(PARTITIONS_PER_TOPIC_MAX <= PARTITIONS_MAX);
const _: () = assert!(PARTITIONS_PER_TOPIC_MAX <= i32::MAX as usize, "partition indexes are Kafka int32");
const _: () = assert!(REPLICAS_PER_PARTITION_MAX <= i16::MAX as usize, "a replication factor is Kafka int16");
const _: () = assert!(COMMAND_BATCH_BYTES_MAX <= i32::MAX as usize, "a batch length is an int32");
const _: () = assert!(COMMAND_BYTES_MAX < SNAPSHOT_BYTES_MAX);
