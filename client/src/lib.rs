//! Async Rust producer, consumer and admin client for Kafka-protocol brokers, Sluice first.
//!
//! Pure Rust on tokio; nothing here depends on the broker crate. Module map:
//! - [`config`]: the Java client's property names, validated into typed configs.
//! - [`error`]: [`ClientError`], and what each failure means for a retry.
//! - [`net`]: one connection per broker, API versions negotiated on each.
//! - [`metadata`] and [`cluster`]: the cluster's brokers, topics and leaders.
//! - [`metrics`]: the counters producers and consumers report under Kafka's metric names.
//! - [`producer`]: partitioner, accumulator, idempotence and the sender task (the produce
//!   path and its copy budget open [`producer`]).
//! - [`consumer`]: positions, fetches (the consume path and its copy budget are in
//!   [`consumer::fetcher`]), offsets, commits, group membership and the assignors.
//! - [`admin`]: topics, configs, consumer groups, partitions' offsets and the cluster.
//! - [`mirror`]: `sluice-mirror`'s core, copying topics between clusters batch for batch.
#![forbid(unsafe_code)]

pub mod admin;
pub mod cluster;
pub mod config;
pub mod consumer;
pub mod error;
pub mod metadata;
pub mod metrics;
pub mod mirror;
pub mod net;
pub mod producer;

pub use config::ClientConfig;
pub use error::{ClientError, Result};
pub use metadata::TopicPartition;
