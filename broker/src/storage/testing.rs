//! Synthetic record batches, and a log config that rolls often, for tests and benchmarks
//! of the storage engine.
//!
//! The log looks only at batch headers, so the records section here is filler bytes;
//! the header, lengths and CRC-32C are real.

use sluice_protocol::record::batch;

use super::LogConfig;

/// A log config with 16 KiB segments and small indexes, so that tests roll often.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 * 1024,
        segment_index_bytes: 4096,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

/// A valid v2 batch: `count` records, `payload` filler bytes, max timestamp `ts`.
pub fn batch(base_offset: i64, count: i32, payload: usize) -> Vec<u8> {
    batch_at_time(base_offset, count, payload, 1_700_000_000_000)
}

/// A valid v2 batch with the given max timestamp.
pub fn batch_at_time(base_offset: i64, count: i32, payload: usize, max_timestamp: i64) -> Vec<u8> {
    assert!(count > 0, "a batch holds at least one record");
    let mut b = vec![0u8; batch::HEADER_LEN + payload];
    for (i, byte) in b[batch::HEADER_LEN..].iter_mut().enumerate() {
        *byte = (i % 251) as u8;
    }
    let length = (b.len() - batch::LOG_OVERHEAD) as i32;
    b[0..8].copy_from_slice(&base_offset.to_be_bytes());
    b[8..12].copy_from_slice(&length.to_be_bytes());
    b[16] = batch::MAGIC_V2 as u8;
    b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    b[27..35].copy_from_slice(&max_timestamp.to_be_bytes());
    b[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    batch::update_crc(&mut b);
    b
}

/// A valid v2 batch from an idempotent producer.
pub fn idempotent_batch(producer_id: i64, epoch: i16, base_sequence: i32, count: i32) -> Vec<u8> {
    let mut b = batch(0, count, 20);
    b[43..51].copy_from_slice(&producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    batch::update_crc(&mut b);
    b
}

/// A valid v2 batch of a transactional producer.
pub fn transactional_batch(
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    count: i32,
) -> Vec<u8> {
    let mut b = idempotent_batch(producer_id, epoch, base_sequence, count);
    let attributes = i16::from_be_bytes([b[21], b[22]]) | batch::attributes::TRANSACTIONAL;
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch::update_crc(&mut b);
    b
}
