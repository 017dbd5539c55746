//! Async Rust producer, consumer and admin client for Kafka-protocol brokers, Sluice first.
//!
//! Built so far: the producer's partitioner ([`producer::partitioner`]), identical to the
//! Java client's.
#![forbid(unsafe_code)]

pub mod producer;
