//! Kafka record batches (message format v2, "magic 2").
//!
//! Sluice stores batches exactly as producers send them. The broker looks only at the
//! 61-byte header ([`batch::RecordBatch`]); the client decodes and builds whole batches.
//!
//! - [`batch`]: the zero-copy header view, CRC-32C check and in-place patching.
//! - [`record`](mod@record): records inside a batch ([`Record`], [`Records`], headers).
//! - [`compression`]: the gzip, snappy, lz4 and zstd codecs, bounded on the way in.
//! - [`builder`]: [`BatchBuilder`], which produces batches for the client.
//!
//! Reading a fetched batch:
//!
//! ```
//! # use sluice_protocol::record::{BatchBuilder, Compression, RecordBatch};
//! # let mut b = BatchBuilder::new(Compression::Lz4);
//! # b.append(1_700_000_000_000, Some(b"k"), Some(b"v"), &[]).unwrap();
//! # let bytes = b.build().unwrap();
//! let batch = RecordBatch::parse_verified(&bytes)?;
//! let records = batch.records(1 << 20)?; // decompressed, at most 1 MiB
//! for record in &records {
//!     let record = record?;
//!     let _ = (records.offset(&record), records.timestamp(&record), record.key(), record.value());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Dependencies, and why each:
//! - `crc32c`: CRC-32C (Castagnoli) with SSE4.2/ARMv8 acceleration; v2 batches need it.
//! - `flate2`: gzip (codec 1), the reference Rust binding of deflate (miniz_oxide backend).
//! - `snap`: snappy (codec 2) raw blocks, from which the xerial framing is assembled.
//! - `lz4_flex`: lz4 (codec 3) in the LZ4 frame format, pure Rust, no `unsafe` needed here.
//! - `zstd`: zstd (codec 4), the binding of the reference C library, with bounded streaming
//!   decode and a window-size cap.

pub mod batch;
pub mod builder;
pub mod compression;
#[expect(
    clippy::module_inception,
    reason = "STYLE.md names the layout: record/record.rs holds the Record view"
)]
pub mod record;

pub use batch::{batches, BatchError, BatchRecords, Batches, RecordBatch};
pub use builder::{control_marker, BatchBuilder, BuildError};
pub use compression::{Compression, CompressionError};
pub use record::{ControlType, Header, Headers, Record, RecordError, Records};

#[cfg(test)]
mod tests;
