//! Tests of the transport over real sockets on 127.0.0.1, with real openraft groups on a
//! minimal in-memory store.

mod harness;
mod mem_store;
mod mutual_tls;
mod payload;
mod raft_groups;
mod wire_behaviour;
