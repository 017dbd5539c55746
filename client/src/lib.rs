//! Async Rust producer, consumer and admin client for Kafka-protocol brokers, Sluice first.
#![forbid(unsafe_code)]
