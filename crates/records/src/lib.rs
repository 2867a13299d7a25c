//! Record formats at the edge of the log, shared by the core and the listeners: legacy Kafka
//! message sets (magic 0/1) converted to and from the RecordBatch v2 batches the log stores,
//! and record-level reading of stored v2 batches with CRC checks and bounded decompression.
//! Also Kafka's default partitioner for keys. Pure functions over byte slices: no I/O, no broker state.

pub mod convert;
pub mod partitioner;
