//! Sluice Kafka listener.
