//! `sluiced`, the Sluice broker: a single-node log broker that speaks the Kafka protocol.
//!
//! - [`storage`]: the partition log (segments, indexes, recovery, retention).
//! - [`topics`] and [`partition`]: the topic catalog and the async face of each log.
//! - [`config`] and [`cli`]: Kafka's broker property names, flags, validation.

pub mod cli;
pub mod config;
pub mod partition;
pub mod storage;
pub mod topics;
