//! The producer. So far its partitioner ([`partitioner`]): which partition a record goes
//! to, identical to Kafka's Java client; the accumulator, idempotence and the sender follow.

pub mod partitioner;
