//! Sluice's Kafka listener: translates Kafka wire requests into broker-core calls and
//! core errors into Kafka error codes. Message codecs come from the `kafka-protocol`
//! crate; this crate owns framing, dispatch, and one module per Kafka API.

pub mod acl;
mod api;
mod authorize;
mod authorize_admin;
mod codec;
mod connection;
mod dispatch;
mod error_codes;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod listener;
pub mod quota;
pub mod sasl;
mod server;
mod session;
mod versions;

pub use server::{serve, KafkaListenerConfig};
pub use versions::SUPPORTED_APIS;
