//! Idempotent producer state of one partition: for each producer id, its epoch and the
//! sequence ranges (with their offsets) of its last five batches, the most a producer
//! keeps in flight (`max.in.flight.requests.per.connection` ≤ 5 with idempotence).
//!
//! The check runs under the partition's writer lock, before the batches are written:
//! - a batch whose sequence range matches a cached one is a retry of a batch already in
//!   the log: it is not written again, and the original offsets are answered;
//! - an older epoch is fenced (INVALID_PRODUCER_EPOCH);
//! - a sequence that does not follow the last one is OUT_OF_ORDER_SEQUENCE_NUMBER
//!   (a new epoch must start at 0; a producer the partition has no state for — never
//!   seen, or expired — may start anywhere, as in Kafka after KIP-360).
//!
//! Persistence: `<offset>.snapshot` files beside the segments hold the state as of that
//! offset (written on roll and on clean close, crc-checked, text). Opening a partition
//! loads the newest snapshot at or below the log end offset and replays the batch headers
//! after it, so the state after a crash is rebuilt from the log tail.
//!
//! ```text
//! <offset>.snapshot   sluice-producers v1
//!                     <pid> <epoch> <last timestamp> <first_seq>:<last_seq>:<first_offset>:<last_offset> ...
//!                     crc <crc32 of the lines above, hex>
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use super::segment::{BatchMeta, Segment};
use super::StorageError;

/// Batches remembered per producer for duplicate detection.
const CACHED_BATCHES: usize = 5;
/// Producers idle longer than this are forgotten (Kafka's `producer.id.expiration.ms`).
pub(crate) const PRODUCER_EXPIRATION_MS: i64 = 24 * 3600 * 1000;
const HEADER: &str = "sluice-producers v1";

/// One batch of a producer, as remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CachedBatch {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// What is known about one producer id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub last_timestamp: i64,
    pub batches: VecDeque<CachedBatch>,
}

/// The idempotence facts of one batch about to be appended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdempotentBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    pub record_count: i32,
    pub max_timestamp: i64,
}

/// The outcome of checking a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Write it.
    Append,
    /// Already in the log at these offsets: answer them, write nothing.
    Duplicate { first_offset: i64, last_offset: i64 },
}

/// The state of every producer of a partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

fn last_seq(first_seq: i32, record_count: i32) -> i32 {
    // Sequences wrap at i32::MAX back to 0, as in Kafka.
    ((i64::from(first_seq) + i64::from(record_count) - 1) % (i64::from(i32::MAX) + 1)) as i32
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerState {
    /// Checks a batch against the state.
    ///
    /// # Errors
    /// [`StorageError::InvalidProducerEpoch`] and [`StorageError::OutOfOrderSequence`].
    pub(crate) fn check(&self, b: &IdempotentBatch) -> Result<Check, StorageError> {
        let Some(entry) = self.producers.get(&b.producer_id) else { return Ok(Check::Append) };
        if b.epoch < entry.epoch {
            return Err(StorageError::InvalidProducerEpoch {
                producer_id: b.producer_id,
                current: entry.epoch,
                found: b.epoch,
            });
        }
        let last = last_seq(b.first_seq, b.record_count);
        if b.epoch > entry.epoch {
            return if b.first_seq == 0 {
                Ok(Check::Append)
            } else {
                Err(StorageError::OutOfOrderSequence {
                    producer_id: b.producer_id,
                    expected: 0,
                    found: b.first_seq,
                })
            };
        }
        if let Some(dup) =
            entry.batches.iter().find(|c| c.first_seq == b.first_seq && c.last_seq == last)
        {
            return Ok(Check::Duplicate {
                first_offset: dup.first_offset,
                last_offset: dup.last_offset,
            });
        }
        match entry.batches.back() {
            Some(prev) if b.first_seq != next_seq(prev.last_seq) => {
                Err(StorageError::OutOfOrderSequence {
                    producer_id: b.producer_id,
                    expected: next_seq(prev.last_seq),
                    found: b.first_seq,
                })
            }
            _ => Ok(Check::Append),
        }
    }

    /// Records a batch that was written at `first_offset..=last_offset`.
    pub(crate) fn update(&mut self, b: &IdempotentBatch, first_offset: i64, last_offset: i64) {
        let entry = self.producers.entry(b.producer_id).or_default();
        if b.epoch != entry.epoch {
            entry.epoch = b.epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = entry.last_timestamp.max(b.max_timestamp);
        entry.batches.push_back(CachedBatch {
            first_seq: b.first_seq,
            last_seq: last_seq(b.first_seq, b.record_count),
            first_offset,
            last_offset,
        });
        while entry.batches.len() > CACHED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// Checks a batch against `staged` (earlier batches of the same record set) first,
    /// then against `self`.
    ///
    /// # Errors
    /// As [`Self::check`].
    pub(crate) fn check_staged(
        &self,
        staged: &ProducerState,
        b: &IdempotentBatch,
    ) -> Result<Check, StorageError> {
        if staged.producers.contains_key(&b.producer_id) {
            staged.check(b)
        } else {
            self.check(b)
        }
    }

    /// Records a batch in `staged`, starting from `self`'s entry for the producer.
    pub(crate) fn stage(
        &self,
        staged: &mut ProducerState,
        b: &IdempotentBatch,
        first: i64,
        last: i64,
    ) {
        if let (std::collections::hash_map::Entry::Vacant(slot), Some(e)) =
            (staged.producers.entry(b.producer_id), self.producers.get(&b.producer_id))
        {
            slot.insert(e.clone());
        }
        staged.update(b, first, last);
    }

    /// Takes the staged entries once their batches are written.
    pub(crate) fn commit(&mut self, staged: ProducerState) {
        self.producers.extend(staged.producers);
    }

    /// Forgets producers idle since before `now - PRODUCER_EXPIRATION_MS`.
    pub(crate) fn expire(&mut self, now_ms: i64) {
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp) < PRODUCER_EXPIRATION_MS);
    }

    /// Number of producers known.
    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    /// Writes `<offset>.snapshot` in `dir` (temporary file, then rename) and removes
    /// snapshots older than the previous one.
    pub(crate) fn write_snapshot(&self, dir: &Path, offset: i64) -> Result<(), StorageError> {
        let mut body = format!("{HEADER}\n");
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let e = &self.producers[&id];
            let _ = write!(body, "{id} {} {}", e.epoch, e.last_timestamp);
            for c in &e.batches {
                let _ = write!(
                    body,
                    " {}:{}:{}:{}",
                    c.first_seq, c.last_seq, c.first_offset, c.last_offset
                );
            }
            body.push('\n');
        }
        let _ = writeln!(body, "crc {:08x}", crc32fast::hash(body.as_bytes()));
        let path = snapshot_path(dir, offset);
        let tmp = path.with_extension("snapshot.tmp");
        fs::write(&tmp, body)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| StorageError::io("write producer snapshot", &path, e))?;
        let snapshots = list_snapshots(dir);
        if snapshots.len() > 2 {
            for (_, old) in &snapshots[..snapshots.len() - 2] {
                let _ = fs::remove_file(old);
            }
        }
        Ok(())
    }

    /// Loads the newest valid snapshot at or below `max_offset`: (state, its offset).
    /// Corrupt or newer snapshots are removed (a newer one describes a cut tail).
    pub(crate) fn load_snapshot(dir: &Path, max_offset: i64) -> (ProducerState, i64) {
        for (offset, path) in list_snapshots(dir).into_iter().rev() {
            if offset > max_offset {
                let _ = fs::remove_file(&path);
                continue;
            }
            match fs::read_to_string(&path).ok().and_then(|t| parse(&t)) {
                Some(state) => return (state, offset),
                None => {
                    tracing::warn!(snapshot = %path.display(), "ignoring corrupt producer snapshot");
                    let _ = fs::remove_file(&path);
                }
            }
        }
        (ProducerState::default(), 0)
    }
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(super::segment_file_name(offset, "snapshot"))
}

fn list_snapshots(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut out: Vec<(i64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".snapshot")?;
            Some((stem.parse().ok()?, e.path()))
        })
        .collect();
    out.sort_unstable();
    out
}

fn parse(text: &str) -> Option<ProducerState> {
    let crc_at = text.rfind("crc ")?;
    let (body, crc) = text.split_at(crc_at);
    if format!("{:08x}", crc32fast::hash(body.as_bytes())) != crc.trim().trim_start_matches("crc ")
    {
        return None;
    }
    let mut lines = body.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let mut state = ProducerState::default();
    for line in lines {
        let mut f = line.split(' ');
        let id: i64 = f.next()?.parse().ok()?;
        let epoch: i16 = f.next()?.parse().ok()?;
        let last_timestamp: i64 = f.next()?.parse().ok()?;
        let mut batches = VecDeque::new();
        for c in f {
            let n: Vec<i64> = c.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
            let [first_seq, last_seq, first_offset, last_offset] = n[..] else { return None };
            batches.push_back(CachedBatch {
                first_seq: i32::try_from(first_seq).ok()?,
                last_seq: i32::try_from(last_seq).ok()?,
                first_offset,
                last_offset,
            });
        }
        state.producers.insert(id, ProducerEntry { epoch, last_timestamp, batches });
    }
    Some(state)
}

/// The result of checking a record set's idempotent batches.
pub(crate) enum Staged {
    /// Write it; the staged producer state goes in once it is written.
    Append(Option<ProducerState>),
    /// Every batch is a retry of batches already at these offsets.
    Duplicate(i64, i64),
}

pub(crate) fn check_producers(
    producers: &ProducerState,
    batches: &[BatchMeta],
    base_offset: i64,
) -> Result<Staged, StorageError> {
    let mut staged: Option<ProducerState> = None;
    let mut duplicates: Option<(i64, i64)> = None;
    let mut offset = base_offset;
    for (i, m) in batches.iter().enumerate() {
        let last = offset + i64::from(m.last_offset_delta);
        if m.producer_id >= 0 && m.base_sequence >= 0 {
            let b = IdempotentBatch {
                producer_id: m.producer_id,
                epoch: m.producer_epoch,
                first_seq: m.base_sequence,
                record_count: m.records_count,
                max_timestamp: m.max_timestamp,
            };
            let scratch = staged.get_or_insert_with(ProducerState::default);
            match producers.check_staged(scratch, &b)? {
                Check::Append if duplicates.is_none() => producers.stage(scratch, &b, offset, last),
                Check::Duplicate { first_offset, last_offset }
                    if i == 0 || duplicates.is_some() =>
                {
                    let first = duplicates.map_or(first_offset, |d| d.0);
                    duplicates = Some((first, last_offset));
                }
                _ => {
                    // A set that mixes retried and new batches: no producer sends one.
                    return Err(StorageError::OutOfOrderSequence {
                        producer_id: m.producer_id,
                        expected: -1,
                        found: m.base_sequence,
                    });
                }
            }
        } else if duplicates.is_some() {
            return Err(StorageError::OutOfOrderSequence {
                producer_id: -1,
                expected: -1,
                found: -1,
            });
        }
        offset = last + 1;
    }
    Ok(match duplicates {
        Some((first, last)) => Staged::Duplicate(first, last),
        None => Staged::Append(staged),
    })
}

/// Loads the newest producer snapshot and replays the batch headers after it.
pub(crate) fn rebuild_producers(
    dir: &Path,
    segments: &[Arc<Segment>],
    log_end_offset: i64,
) -> ProducerState {
    let (mut state, from) = ProducerState::load_snapshot(dir, log_end_offset);
    let first = segments.partition_point(|s| s.base_offset() <= from).saturating_sub(1);
    for segment in &segments[first..] {
        segment.for_each_batch_from(from, |b| {
            if b.producer_id() >= 0 && b.base_sequence() >= 0 && b.base_offset() >= from {
                let ib = IdempotentBatch {
                    producer_id: b.producer_id(),
                    epoch: b.producer_epoch(),
                    first_seq: b.base_sequence(),
                    record_count: b.records_count(),
                    max_timestamp: b.max_timestamp(),
                };
                state.update(&ib, b.base_offset(), b.last_offset());
            }
        });
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(pid: i64, epoch: i16, first_seq: i32, count: i32) -> IdempotentBatch {
        IdempotentBatch {
            producer_id: pid,
            epoch,
            first_seq,
            record_count: count,
            max_timestamp: 1000,
        }
    }

    #[test]
    fn in_order_batches_append_and_a_retry_is_a_duplicate() {
        let mut s = ProducerState::default();
        assert_eq!(s.check(&b(7, 0, 0, 5)).unwrap(), Check::Append);
        s.update(&b(7, 0, 0, 5), 100, 104);
        assert_eq!(s.check(&b(7, 0, 5, 3)).unwrap(), Check::Append);
        s.update(&b(7, 0, 5, 3), 105, 107);
        assert_eq!(
            s.check(&b(7, 0, 0, 5)).unwrap(),
            Check::Duplicate { first_offset: 100, last_offset: 104 }
        );
        assert_eq!(
            s.check(&b(7, 0, 5, 3)).unwrap(),
            Check::Duplicate { first_offset: 105, last_offset: 107 }
        );
    }

    #[test]
    fn a_gap_is_out_of_order() {
        let mut s = ProducerState::default();
        s.update(&b(7, 0, 0, 5), 0, 4);
        let err = s.check(&b(7, 0, 6, 1)).unwrap_err();
        assert!(
            matches!(err, StorageError::OutOfOrderSequence { expected: 5, found: 6, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_stale_epoch_is_fenced_and_a_new_epoch_starts_at_zero() {
        let mut s = ProducerState::default();
        s.update(&b(7, 3, 0, 1), 0, 0);
        assert!(matches!(
            s.check(&b(7, 2, 1, 1)),
            Err(StorageError::InvalidProducerEpoch { current: 3, found: 2, .. })
        ));
        assert!(matches!(
            s.check(&b(7, 4, 9, 1)),
            Err(StorageError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(s.check(&b(7, 4, 0, 1)).unwrap(), Check::Append);
        s.update(&b(7, 4, 0, 1), 1, 1);
        // The old epoch's batches are gone: its retry is fenced, not a duplicate.
        assert!(s.check(&b(7, 3, 0, 1)).is_err());
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerState::default();
        for i in 0..7 {
            s.update(&b(1, 0, i, 1), i64::from(i), i64::from(i));
        }
        assert!(matches!(s.check(&b(1, 0, 1, 1)), Err(StorageError::OutOfOrderSequence { .. })));
        assert_eq!(
            s.check(&b(1, 0, 2, 1)).unwrap(),
            Check::Duplicate { first_offset: 2, last_offset: 2 }
        );
    }

    #[test]
    fn an_unknown_producer_may_start_anywhere_and_sequences_wrap() {
        let mut s = ProducerState::default();
        assert_eq!(s.check(&b(9, 0, 42, 1)).unwrap(), Check::Append);
        s.update(&b(9, 0, i32::MAX - 1, 2), 0, 1);
        assert_eq!(s.check(&b(9, 0, 0, 1)).unwrap(), Check::Append);
    }

    #[test]
    fn snapshots_round_trip_and_corrupt_ones_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProducerState::default();
        s.update(&b(1, 2, 0, 3), 10, 12);
        s.update(&b(5, 0, 0, 1), 13, 13);
        s.write_snapshot(dir.path(), 14).unwrap();
        assert_eq!(ProducerState::load_snapshot(dir.path(), 100), (s.clone(), 14));
        // A corrupt newest snapshot is skipped for the one before it.
        s.update(&b(5, 0, 1, 1), 14, 14);
        s.write_snapshot(dir.path(), 20).unwrap();
        let path = dir.path().join(crate::storage::segment_file_name(20, "snapshot"));
        let text = fs::read_to_string(&path).unwrap().replace("14:14", "14:15");
        fs::write(&path, text).unwrap();
        assert_eq!(ProducerState::load_snapshot(dir.path(), 100).1, 14);
        // A snapshot past the log end describes a cut tail: not used.
        let (none, at) = ProducerState::load_snapshot(dir.path(), 13);
        assert_eq!((none.len(), at), (0, 0));
    }

    #[test]
    fn idle_producers_expire() {
        let mut s = ProducerState::default();
        s.update(&b(1, 0, 0, 1), 0, 0);
        s.expire(1000 + PRODUCER_EXPIRATION_MS - 1);
        assert_eq!(s.len(), 1);
        s.expire(1000 + PRODUCER_EXPIRATION_MS);
        assert_eq!(s.len(), 0);
    }
}
