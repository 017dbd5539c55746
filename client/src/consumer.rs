//! The consumer's group membership, sans I/O so far: the consumer protocol's bytes and
//! the leader's partition assignors.

pub mod assignor;
pub mod protocol;
