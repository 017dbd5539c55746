//! Kafka record batches (message format v2, "magic 2").
//!
//! Sluice stores batches exactly as producers send them. The broker looks only at the
//! 61-byte header ([`batch::RecordBatch`]); the client decodes and builds whole batches.

pub mod batch;

pub use batch::{BatchError, RecordBatch};
