//! `sluiced`, the Sluice broker: a single-node log broker that speaks the Kafka protocol.
//!
//! - [`storage`]: the partition log (segments, indexes, recovery, retention).

pub mod storage;
