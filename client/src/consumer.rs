//! The consumer's group membership, sans I/O so far: the consumer protocol's bytes.

pub mod protocol;
