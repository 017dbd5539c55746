//! Keys and values of `__transaction_state`, in Sluice's own format (Kafka's
//! `TransactionLogKey`/`TransactionLogValue` carry no pending offsets, which this
//! coordinator keeps with the transaction). All integers big-endian.
//!
//! ```text
//! key    u16 version (0) | transactional id (the rest, UTF-8, at most 32767 bytes)
//! value  u16 version (0) | i64 producer id | i64 previous producer id
//!        | i16 epoch | i16 last epoch | i32 timeout ms | u8 state
//!        | i64 start ms | i64 last update ms
//!        | u32 topics  { u16 name length, name, u32 partitions { i32 partition } }
//!        | u32 groups  { u16 id length, id, u32 offsets
//!                        { u16 topic length, topic, i32 partition, i64 offset,
//!                          i32 leader epoch, u16 metadata length, metadata } }
//! ```
//! A tombstone (no value) removes the id. Every count is checked against the bytes left
//! before anything is allocated, and the state machine bounds what a value can hold
//! (partitions, offsets, metadata bytes: see [`super::state`]), so a value stays below a
//! few MiB.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::metadata::{PendingOffset, TxnMetadata, TxnState};
use crate::group::types::TopicPartition;

const VERSION: u16 = 0;

/// A record that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// It ends early or a count exceeds it.
    #[error("record truncated")]
    Truncated,
    /// A version this broker does not know.
    #[error("unknown record version {0}")]
    Version(u16),
    /// A field holds an impossible value.
    #[error("invalid record: {0}")]
    Invalid(&'static str),
}

/// A transaction's value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnValue(TxnMetadata);

impl TxnValue {
    /// The value of `t`.
    pub fn of(t: &TxnMetadata) -> TxnValue {
        TxnValue(t.clone())
    }

    /// The metadata, for the transactional id of its key.
    pub fn into_metadata(self, id: String) -> TxnMetadata {
        TxnMetadata { id, ..self.0 }
    }
}

/// The key of `txn_id`.
pub fn encode_key(txn_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(2 + txn_id.len());
    b.put_u16(VERSION);
    b.put_slice(txn_id.as_bytes());
    b.freeze()
}

/// The transactional id of a key.
///
/// # Errors
/// An unknown version or an id that is not UTF-8.
pub fn decode_key(key: &[u8]) -> Result<String, RecordError> {
    let mut r = Reader(key);
    let v = r.u16()?;
    if v != VERSION {
        return Err(RecordError::Version(v));
    }
    String::from_utf8(r.0.to_vec()).map_err(|_| RecordError::Invalid("transactional id"))
}

fn state_code(s: TxnState) -> u8 {
    match s {
        TxnState::Empty => 0,
        TxnState::Ongoing => 1,
        TxnState::PrepareCommit => 2,
        TxnState::PrepareAbort => 3,
        TxnState::CompleteCommit => 4,
        TxnState::CompleteAbort => 5,
        TxnState::PrepareEpochFence => 6,
        TxnState::Dead => 7,
    }
}

fn put_str(b: &mut BytesMut, s: &str) {
    // Names are bounded by the protocol (i16 lengths) and by topic and group rules.
    let len = s.len().min(u16::MAX as usize);
    b.put_u16(len as u16);
    b.put_slice(&s.as_bytes()[..len]);
}

/// The encoded value.
pub fn encode_value(v: &TxnValue) -> Bytes {
    let t = &v.0;
    let mut b = BytesMut::with_capacity(64 + t.partitions.len() * 8);
    b.put_u16(VERSION);
    b.put_i64(t.producer_id);
    b.put_i64(t.prev_producer_id);
    b.put_i16(t.producer_epoch);
    b.put_i16(t.last_producer_epoch);
    b.put_i32(t.timeout_ms);
    b.put_u8(state_code(t.state));
    b.put_i64(t.start_ms);
    b.put_i64(t.last_update_ms);
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in &t.partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    b.put_u32(by_topic.len() as u32);
    for (topic, partitions) in by_topic {
        put_str(&mut b, topic);
        b.put_u32(partitions.len() as u32);
        for p in partitions {
            b.put_i32(p);
        }
    }
    b.put_u32(t.offsets.len() as u32);
    for (group, offsets) in &t.offsets {
        put_str(&mut b, group);
        b.put_u32(offsets.len() as u32);
        for (tp, o) in offsets {
            put_str(&mut b, &tp.topic);
            b.put_i32(tp.partition);
            b.put_i64(o.offset);
            b.put_i32(o.leader_epoch);
            put_str(&mut b, &o.metadata);
        }
    }
    b.freeze()
}

/// A decoded value (its id is the key's: see [`TxnValue::into_metadata`]).
///
/// # Errors
/// A truncated value, an unknown version or state.
pub fn decode_value(value: &[u8]) -> Result<TxnValue, RecordError> {
    let mut r = Reader(value);
    let v = r.u16()?;
    if v != VERSION {
        return Err(RecordError::Version(v));
    }
    let producer_id = r.i64()?;
    let prev_producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let last_producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = match r.u8()? {
        0 => TxnState::Empty,
        1 => TxnState::Ongoing,
        2 => TxnState::PrepareCommit,
        3 => TxnState::PrepareAbort,
        4 => TxnState::CompleteCommit,
        5 => TxnState::CompleteAbort,
        6 => TxnState::PrepareEpochFence,
        7 => TxnState::Dead,
        _ => return Err(RecordError::Invalid("state")),
    };
    let start_ms = r.i64()?;
    let last_update_ms = r.i64()?;
    let mut partitions = BTreeSet::new();
    for _ in 0..r.count(6)? {
        let topic: Arc<str> = Arc::from(r.str()?);
        for _ in 0..r.count(4)? {
            partitions.insert(TopicPartition { topic: Arc::clone(&topic), partition: r.i32()? });
        }
    }
    let mut offsets = BTreeMap::new();
    for _ in 0..r.count(6)? {
        let group = r.str()?.to_owned();
        let mut g = BTreeMap::new();
        for _ in 0..r.count(20)? {
            let topic: Arc<str> = Arc::from(r.str()?);
            let tp = TopicPartition { topic, partition: r.i32()? };
            let offset = r.i64()?;
            let leader_epoch = r.i32()?;
            let metadata = r.str()?.to_owned();
            g.insert(tp, PendingOffset { offset, leader_epoch, metadata });
        }
        offsets.insert(group, g);
    }
    if !r.0.is_empty() {
        return Err(RecordError::Invalid("trailing bytes"));
    }
    Ok(TxnValue(TxnMetadata {
        id: String::new(),
        producer_id,
        prev_producer_id,
        producer_epoch,
        last_producer_epoch,
        timeout_ms,
        state,
        partitions,
        offsets,
        start_ms,
        last_update_ms,
    }))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, RecordError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    /// A count of elements of at least `min_size` bytes each, checked against the bytes
    /// left so that a corrupt count cannot make the loader loop for long.
    fn count(&mut self, min_size: usize) -> Result<u32, RecordError> {
        let n = u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes"));
        if (n as usize).saturating_mul(min_size) > self.0.len() {
            return Err(RecordError::Truncated);
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<&'a str, RecordError> {
        let len = self.u16()? as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| RecordError::Invalid("string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_round_trips_and_every_cut_is_refused() {
        let tp = |t: &str, p| TopicPartition { topic: Arc::from(t), partition: p };
        let t = TxnMetadata {
            id: "tx".into(),
            producer_id: 7,
            prev_producer_id: 3,
            producer_epoch: 5,
            last_producer_epoch: 4,
            timeout_ms: 60_000,
            state: TxnState::PrepareCommit,
            partitions: [tp("a", 0), tp("a", 2), tp("b", 1)].into(),
            offsets: [(
                "g".to_string(),
                [(tp("a", 0), PendingOffset { offset: 9, leader_epoch: -1, metadata: "m".into() })]
                    .into(),
            )]
            .into(),
            start_ms: 10,
            last_update_ms: 20,
        };
        let bytes = encode_value(&TxnValue::of(&t));
        assert_eq!(decode_value(&bytes).unwrap().into_metadata("tx".into()), t);
        for cut in 0..bytes.len() {
            assert!(decode_value(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(decode_key(&encode_key("tx")).unwrap(), "tx");
        assert_eq!(decode_key(&[0, 1, b'x']), Err(RecordError::Version(1)));
    }
}
