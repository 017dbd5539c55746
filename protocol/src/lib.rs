//! The Kafka wire protocol as Sluice speaks it: bytes in, typed values out.
//!
//! This crate is sans-I/O: no sockets, no files, no async runtime. The broker, the
//! client and the mirror all share it.
//!
//! - [`consumer_protocol`]: the subscription and assignment bytes of the classic
//!   consumer protocol, inside JoinGroup and SyncGroup.
//! - [`record`]: the RecordBatch v2 format (magic 2) that producers send and the log
//!   stores verbatim, with its compression codecs.
//! - [`varint`]: zig-zag and unsigned variable-length integers.
#![forbid(unsafe_code)]

pub mod api_key;
pub mod consumer_protocol;
pub mod error_code;
pub mod frame;
pub mod header;
pub mod messages;
pub mod record;
pub mod varint;

pub use kafka_protocol;
