//! Record formats at the edge: legacy message sets (magic 0/1) converted to and from the
//! v2 batches the log stores, and record-level lookups inside a batch.

pub mod convert;
