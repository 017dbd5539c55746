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
//!   seen, expired or evicted — may start anywhere, as in Kafka after KIP-360).
//!
//! Bounds (any client may send any producer id, so the state must not grow with them):
//! - Expiry by the broker's clock, as Kafka's `ProducerStateManager.removeExpiredProducers`:
//!   a producer id with no append for `producer.id.expiration.ms` is dropped. The time of
//!   the last append is the broker's, never a batch timestamp (a client could send one far
//!   in the future and never expire). Batches replayed from the log at open count as
//!   appended at the open.
//! - At most `sluice.producer.state.max.producers.per.partition` ids: past it the longest
//!   idle is evicted, which is what expiry does early; its next append is treated as an
//!   expired producer's is in Kafka. The recency order is kept in a `BTreeMap`, so a
//!   commit, an eviction and an expiry check each cost O(log n).
//! - A producer that appended within [`EVICTION_GRACE_MS`] is never evicted: a flood of
//!   new producer ids would otherwise push out a live producer's state, and its next
//!   retry would be written twice. A record set whose new producers cannot fit without
//!   that is refused ([`StorageError::TooManyProducers`], a retriable error) and nothing
//!   of it is written.
//! - Snapshots hold at most that many lines, and only the two newest are kept.
//!
//! Persistence: `<offset>.snapshot` files beside the segments hold the state as of that
//! offset (written durably on roll, outside the writer lock, and on clean close;
//! crc-checked, text). Opening a partition loads the newest valid snapshot at or below the
//! log end offset and replays the batch headers after it, so the state after a crash is
//! rebuilt from the log tail. A torn or corrupt snapshot is removed and the one before it
//! (or none) is used, with a longer replay: a safe fallback, as the log is the truth.
//!
//! ```text
//! <offset>.snapshot   sluice-producers v3
//!                     <pid> <epoch> <last append ms, broker clock> <ongoing txn's first offset, or -1> <first_seq>:<last_seq>:<first_offset>:<last_offset> ...
//!                     crc <crc32 of the lines above, hex>
//! ```
//! (v2, read too, had no transaction field; v1 had the batch's max timestamp in the third.)
//!
//! Transactions: a producer's first transactional batch in the partition opens its
//! ongoing transaction at that batch's offset, and the coordinator's marker closes it.
//! The ongoing transactions' first offsets are kept in order: the smallest holds the last
//! stable offset back. A producer with an ongoing transaction never expires and is never
//! evicted (its marker must find it, as in Kafka), and it may not write outside the
//! transaction (INVALID_TXN_STATE).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use sluice_protocol::record::{ControlType, RecordBatch};

use super::io::FileIo;
use super::segment::{BatchMeta, Segment};
use super::txn_index::AbortedTxn;
use super::{durable, StorageError};

/// Batches remembered per producer for duplicate detection.
const CACHED_BATCHES: usize = 5;
/// Kafka's default `producer.id.expiration.ms`: one day.
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 3600 * 1000;
/// Default of `sluice.producer.state.max.producers.per.partition`: far more producers than
/// one partition sees in a day from well-behaved clients, and a bound of a few MiB.
pub const DEFAULT_MAX_PRODUCERS_PER_PARTITION: usize = 10_000;
const HEADER: &str = "sluice-producers v3";
const HEADER_V2: &str = "sluice-producers v2";
const HEADER_V1: &str = "sluice-producers v1";

/// One producer of a partition, as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    /// The producer id.
    pub producer_id: i64,
    /// Its newest epoch here.
    pub producer_epoch: i16,
    /// The sequence of its last record here (-1: none).
    pub last_sequence: i32,
    /// Broker time of its last append, in ms since the epoch.
    pub last_append_ms: i64,
    /// First offset of its ongoing transaction here.
    pub current_txn_first_offset: Option<i64>,
}

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
    /// Broker time of its last append, in ms since the epoch.
    pub last_append_ms: i64,
    pub batches: VecDeque<CachedBatch>,
    /// Offset of the first batch of its ongoing transaction in this partition.
    pub current_txn_first_offset: Option<i64>,
}

/// The idempotence facts of one batch about to be appended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdempotentBatch {
    pub producer_id: i64,
    pub epoch: i16,
    pub first_seq: i32,
    pub record_count: i32,
    /// Part of a transaction.
    pub transactional: bool,
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
#[derive(Debug, Default, Clone)]
pub(crate) struct ProducerState {
    /// Each entry with its key in `by_recency`.
    producers: HashMap<i64, (ProducerEntry, u64)>,
    /// Producer ids by the order of their last append, the longest idle first.
    by_recency: BTreeMap<u64, i64>,
    next_touch: u64,
    /// The first offset of every ongoing transaction, with its producer id.
    ongoing: BTreeMap<i64, i64>,
}

impl PartialEq for ProducerState {
    /// Equal entries; the recency keys are an implementation detail.
    fn eq(&self, other: &Self) -> bool {
        self.producers.len() == other.producers.len()
            && self.producers.iter().all(|(id, (e, _))| other.get(*id) == Some(e))
    }
}

/// Entries changed by the batches of one record set, applied once it is written.
#[derive(Debug, Default)]
pub(crate) struct StagedProducers {
    entries: HashMap<i64, ProducerEntry>,
}

impl StagedProducers {
    /// The first offset of the earliest transaction these batches open (or continue).
    pub(crate) fn first_txn_offset(&self) -> Option<i64> {
        self.entries.values().filter_map(|e| e.current_txn_first_offset).min()
    }

    /// The producers (id, epoch) whose transactions these batches open here: in a
    /// transaction now, and not before them.
    pub(crate) fn opened<'a>(
        &'a self,
        before: &'a ProducerState,
    ) -> impl Iterator<Item = (i64, i16)> + 'a {
        self.entries.iter().filter_map(move |(id, e)| {
            let was = before.get(*id).and_then(|b| b.current_txn_first_offset);
            (e.current_txn_first_offset.is_some() && was.is_none()).then_some((*id, e.epoch))
        })
    }
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

/// Checks a batch against what is known of its producer (`None`: nothing).
fn check_entry(entry: Option<&ProducerEntry>, b: &IdempotentBatch) -> Result<Check, StorageError> {
    let Some(entry) = entry else { return Ok(Check::Append) };
    if b.epoch < entry.epoch {
        return Err(StorageError::InvalidProducerEpoch {
            producer_id: b.producer_id,
            current: entry.epoch,
            found: b.epoch,
        });
    }
    if !b.transactional && entry.current_txn_first_offset.is_some() {
        return Err(StorageError::InvalidTxnState {
            producer_id: b.producer_id,
            reason: "a write outside its ongoing transaction",
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

/// Records in `entry` a batch written at `first_offset..=last_offset`.
fn record_batch(
    entry: &mut ProducerEntry,
    b: &IdempotentBatch,
    first_offset: i64,
    last_offset: i64,
) {
    if b.epoch != entry.epoch {
        entry.epoch = b.epoch;
        entry.batches.clear();
    }
    entry.batches.push_back(CachedBatch {
        first_seq: b.first_seq,
        last_seq: last_seq(b.first_seq, b.record_count),
        first_offset,
        last_offset,
    });
    while entry.batches.len() > CACHED_BATCHES {
        entry.batches.pop_front();
    }
    if b.transactional && entry.current_txn_first_offset.is_none() {
        entry.current_txn_first_offset = Some(first_offset);
    }
}

/// How long after its last append a producer's state is safe from eviction: longer than
/// a producer retries a batch (the Java client's `delivery.timeout.ms` is 2 minutes).
pub const EVICTION_GRACE_MS: i64 = 5 * 60 * 1000;

impl ProducerState {
    /// Whether the `n` longest idle producers may go as of `now_ms`: there are that many,
    /// and each has been idle for `grace_ms`.
    fn can_evict(&self, n: usize, now_ms: i64, grace_ms: i64) -> bool {
        let mut evictable = self.evictable();
        evictable.by_ref().take(n).all(|e| now_ms.saturating_sub(e.last_append_ms) >= grace_ms)
            && self.evictable().take(n).count() == n
    }

    /// Entries without an ongoing transaction, the longest idle first.
    fn evictable(&self) -> impl Iterator<Item = &ProducerEntry> {
        self.by_recency
            .values()
            .filter_map(|id| self.get(*id))
            .filter(|e| e.current_txn_first_offset.is_none())
    }

    /// Keeps `ongoing` in step with a producer's entry changing from `old` to `new`.
    fn track_txn(&mut self, id: i64, old: Option<i64>, new: Option<i64>) {
        if old == new {
            return;
        }
        if let Some(first) = old {
            self.ongoing.remove(&first);
        }
        if let Some(first) = new {
            self.ongoing.insert(first, id);
        }
    }

    /// The first offset of the oldest ongoing transaction: the last stable offset.
    pub(crate) fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.first_key_value().map(|(first, _)| *first)
    }

    /// Producer ids with an ongoing transaction, by its first offset.
    pub(crate) fn ongoing_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().map(|(first, id)| (*id, *first))
    }

    /// Checks a transaction marker against the producer's epoch.
    ///
    /// # Errors
    /// [`StorageError::InvalidProducerEpoch`] for a marker of an older epoch.
    pub(crate) fn check_marker(&self, producer_id: i64, epoch: i16) -> Result<(), StorageError> {
        match self.get(producer_id) {
            Some(e) if epoch < e.epoch => Err(StorageError::InvalidProducerEpoch {
                producer_id,
                current: e.epoch,
                found: epoch,
            }),
            _ => Ok(()),
        }
    }

    /// Ends the producer's ongoing transaction with a marker appended at `now_ms`; returns
    /// the transaction's first offset, if it had one here. A newer epoch in the marker
    /// becomes the producer's, so batches of the old one are fenced from now on.
    pub(crate) fn complete_txn(
        &mut self,
        producer_id: i64,
        epoch: i16,
        now_ms: i64,
        max_producers: usize,
    ) -> Option<i64> {
        let mut entry = self
            .get(producer_id)
            .cloned()
            .unwrap_or(ProducerEntry { epoch, ..ProducerEntry::default() });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        let first = entry.current_txn_first_offset.take();
        entry.last_append_ms = now_ms;
        self.put(producer_id, entry, max_producers);
        first
    }

    /// What is known about a producer.
    pub(crate) fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id).map(|(e, _)| e)
    }

    /// Checks a batch against the state.
    ///
    /// # Errors
    /// [`StorageError::InvalidProducerEpoch`] and [`StorageError::OutOfOrderSequence`].
    pub(crate) fn check(&self, b: &IdempotentBatch) -> Result<Check, StorageError> {
        check_entry(self.get(b.producer_id), b)
    }

    /// Puts `entry` in as the most recently appended, then evicts the longest idle down
    /// to `max_producers`. Returns how many were evicted.
    fn put(&mut self, id: i64, entry: ProducerEntry, max_producers: usize) -> usize {
        let touch = self.next_touch;
        self.next_touch += 1;
        let new_txn = entry.current_txn_first_offset;
        let old_txn = match self.producers.insert(id, (entry, touch)) {
            Some((old, old_touch)) => {
                self.by_recency.remove(&old_touch);
                old.current_txn_first_offset
            }
            None => None,
        };
        self.track_txn(id, old_txn, new_txn);
        self.by_recency.insert(touch, id);
        let mut evicted = 0;
        let mut spared = Vec::new();
        while self.producers.len() > max_producers.max(1) {
            let Some((touch, oldest)) = self.by_recency.pop_first() else { break };
            if self.get(oldest).is_some_and(|e| e.current_txn_first_offset.is_some()) {
                spared.push((touch, oldest));
                continue;
            }
            self.producers.remove(&oldest);
            evicted += 1;
        }
        self.by_recency.extend(spared);
        evicted
    }

    /// Records a batch that was written at `first_offset..=last_offset` at `now_ms`.
    pub(crate) fn update(
        &mut self,
        b: &IdempotentBatch,
        first_offset: i64,
        last_offset: i64,
        now_ms: i64,
        max_producers: usize,
    ) -> usize {
        let mut entry = self.get(b.producer_id).cloned().unwrap_or_default();
        record_batch(&mut entry, b, first_offset, last_offset);
        entry.last_append_ms = now_ms;
        self.put(b.producer_id, entry, max_producers)
    }

    /// Checks a batch against `staged` (earlier batches of the same record set) first,
    /// then against `self`.
    ///
    /// # Errors
    /// As [`Self::check`].
    pub(crate) fn check_staged(
        &self,
        staged: &StagedProducers,
        b: &IdempotentBatch,
    ) -> Result<Check, StorageError> {
        match staged.entries.get(&b.producer_id) {
            Some(e) => check_entry(Some(e), b),
            None => self.check(b),
        }
    }

    /// Records a batch in `staged`, starting from `self`'s entry for the producer.
    pub(crate) fn stage(
        &self,
        staged: &mut StagedProducers,
        b: &IdempotentBatch,
        first: i64,
        last: i64,
    ) {
        let entry = staged
            .entries
            .entry(b.producer_id)
            .or_insert_with(|| self.get(b.producer_id).cloned().unwrap_or_default());
        record_batch(entry, b, first, last);
    }

    /// Takes the staged entries once their batches are written at `now_ms`; returns how
    /// many producers were evicted to stay within `max_producers`.
    pub(crate) fn commit(
        &mut self,
        staged: StagedProducers,
        now_ms: i64,
        max_producers: usize,
    ) -> usize {
        let mut evicted = 0;
        for (id, mut entry) in staged.entries {
            entry.last_append_ms = now_ms;
            evicted += self.put(id, entry, max_producers);
        }
        evicted
    }

    /// Forgets producers with no append for `expiration_ms` as of `now_ms` (broker time);
    /// returns how many.
    pub(crate) fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let mut expired = 0;
        let mut spared = Vec::new();
        // Recency order is append order; a wall clock stepped back only delays expiry.
        while let Some((&touch, &id)) = self.by_recency.first_key_value() {
            let entry = self.get(id);
            let idle = entry.map_or(i64::MAX, |e| now_ms.saturating_sub(e.last_append_ms));
            if idle < expiration_ms {
                break;
            }
            let in_txn = entry.is_some_and(|e| e.current_txn_first_offset.is_some());
            self.by_recency.remove(&touch);
            if in_txn {
                // Its marker is still to come (the coordinator times transactions out).
                spared.push((touch, id));
                continue;
            }
            self.producers.remove(&id);
            expired += 1;
        }
        self.by_recency.extend(spared);
        expired
    }

    /// Number of producers known.
    /// The last offset of each producer's last batch: the batches compaction keeps (as
    /// empty headers, if need be) so that the producers' sequences survive a restart.
    pub(crate) fn last_batch_offsets(&self) -> HashMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(&id, (e, _))| e.batches.back().map(|b| (id, b.last_offset)))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    /// Every producer as DescribeProducers shows it, the longest idle first.
    pub(crate) fn describe(&self) -> Vec<ProducerInfo> {
        self.by_recency
            .values()
            .filter_map(|id| self.producers.get_key_value(id))
            .map(|(&producer_id, (e, _))| ProducerInfo {
                producer_id,
                producer_epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_append_ms: e.last_append_ms,
                current_txn_first_offset: e.current_txn_first_offset,
            })
            .collect()
    }

    /// The snapshot file's text (cheap enough to make under the writer lock: one string).
    pub(crate) fn render_snapshot(&self) -> String {
        let mut body = format!("{HEADER}\n");
        // Longest idle first; no sort, as this runs under the writer lock at a roll.
        for (&id, (e, _)) in
            self.by_recency.values().filter_map(|id| self.producers.get_key_value(id))
        {
            let txn = e.current_txn_first_offset.unwrap_or(-1);
            let _ = write!(body, "{id} {} {} {txn}", e.epoch, e.last_append_ms);
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
        body
    }

    /// Writes `<offset>.snapshot` in `dir` durably; see [`write_snapshot_text`].
    ///
    /// # Errors
    /// As [`durable::write`].
    pub(crate) fn write_snapshot(
        &self,
        io: &dyn FileIo,
        dir: &Path,
        offset: i64,
    ) -> Result<(), StorageError> {
        write_snapshot_text(io, dir, offset, &self.render_snapshot())
    }

    /// Loads the newest valid snapshot at or below `max_offset`: (state, its offset).
    /// Corrupt or newer snapshots are removed (a newer one describes a cut tail).
    pub(crate) fn load_snapshot(
        dir: &Path,
        max_offset: i64,
        max_producers: usize,
    ) -> (ProducerState, i64) {
        for (offset, path) in list_snapshots(dir).into_iter().rev() {
            if offset > max_offset {
                let _ = fs::remove_file(&path);
                continue;
            }
            match fs::read_to_string(&path).ok().and_then(|t| parse(&t, max_producers)) {
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

/// Writes rendered snapshot text as `<offset>.snapshot` in `dir` durably and removes
/// snapshots older than the previous one. Runs outside the writer lock: snapshots have
/// distinct names, so two of them written at once do not overwrite each other.
///
/// # Errors
/// As [`durable::write`].
pub(crate) fn write_snapshot_text(
    io: &dyn FileIo,
    dir: &Path,
    offset: i64,
    text: &str,
) -> Result<(), StorageError> {
    durable::write(io, &snapshot_path(dir, offset), text.as_bytes())?;
    let snapshots = list_snapshots(dir);
    if snapshots.len() > 2 {
        for (_, old) in &snapshots[..snapshots.len() - 2] {
            let _ = fs::remove_file(old);
        }
    }
    Ok(())
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

fn parse(text: &str, max_producers: usize) -> Option<ProducerState> {
    let crc_at = text.rfind("crc ")?;
    let (body, crc) = text.split_at(crc_at);
    if format!("{:08x}", crc32fast::hash(body.as_bytes())) != crc.trim().trim_start_matches("crc ")
    {
        return None;
    }
    let mut lines = body.lines();
    let header = lines.next()?;
    if header != HEADER && header != HEADER_V2 && header != HEADER_V1 {
        return None;
    }
    let has_txn = header == HEADER;
    let mut entries = Vec::new();
    for line in lines {
        let mut f = line.split(' ');
        let id: i64 = f.next()?.parse().ok()?;
        let epoch: i16 = f.next()?.parse().ok()?;
        let last_append_ms: i64 = f.next()?.parse().ok()?;
        let current_txn_first_offset = if has_txn {
            let first: i64 = f.next()?.parse().ok()?;
            (first >= 0).then_some(first)
        } else {
            None
        };
        let mut batches = VecDeque::new();
        for c in f {
            let mut n = c.split(':').map(|x| x.parse::<i64>().ok());
            let (Some(first_seq), Some(last_seq), Some(first_offset), Some(last_offset), None) =
                (n.next()?, n.next()?, n.next()?, n.next()?, n.next())
            else {
                return None;
            };
            batches.push_back(CachedBatch {
                first_seq: i32::try_from(first_seq).ok()?,
                last_seq: i32::try_from(last_seq).ok()?,
                first_offset,
                last_offset,
            });
        }
        if batches.len() > CACHED_BATCHES {
            return None;
        }
        entries
            .push((id, ProducerEntry { epoch, last_append_ms, batches, current_txn_first_offset }));
    }
    // Recency order from the append times; a bound lowered since is applied here.
    entries.sort_by_key(|(id, e)| (e.last_append_ms, *id));
    let mut state = ProducerState::default();
    for (id, entry) in entries {
        state.put(id, entry, max_producers);
    }
    Some(state)
}

/// The result of checking a record set's idempotent batches.
pub(crate) enum Staged {
    /// Write it; the staged producer state goes in once it is written.
    Append(Option<StagedProducers>),
    /// Every batch is a retry of batches already at these offsets.
    Duplicate(i64, i64),
}

pub(crate) fn check_producers(
    producers: &ProducerState,
    batches: &[BatchMeta],
    base_offset: i64,
    now_ms: i64,
    max_producers: usize,
    grace_ms: i64,
) -> Result<Staged, StorageError> {
    let mut staged: Option<StagedProducers> = None;
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
                transactional: m.transactional,
            };
            let scratch = staged.get_or_insert_with(StagedProducers::default);
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
    if let Some(staged) = &staged {
        let new = staged.entries.keys().filter(|id| producers.get(**id).is_none()).count();
        let over = (producers.len() + new).saturating_sub(max_producers.max(1));
        if over > 0 && !producers.can_evict(over, now_ms, grace_ms) {
            return Err(StorageError::TooManyProducers { limit: max_producers });
        }
    }
    Ok(match duplicates {
        Some((first, last)) => Staged::Duplicate(first, last),
        None => Staged::Append(staged),
    })
}

/// The producer state rebuilt at open, with what the replay found.
#[derive(Debug)]
pub(crate) struct Rebuilt {
    /// The state as of the log end offset.
    pub state: ProducerState,
    /// Offset the replay started from (the snapshot's).
    pub replayed_from: i64,
    /// The transactions aborted at or past `replayed_from`, with the base offset of the
    /// segment each marker is in.
    pub aborted: Vec<(i64, AbortedTxn)>,
}

/// Loads the newest producer snapshot and replays the batch headers after it, or after
/// `known_from` when that is later (and the transaction markers, whose aborts rebuild the
/// aborted-transaction index); replayed batches count as appended at `now_ms`.
pub(crate) fn rebuild_producers(
    dir: &Path,
    segments: &[Arc<Segment>],
    known_from: i64,
    log_end_offset: i64,
    now_ms: i64,
    max_producers: usize,
) -> Result<Rebuilt, StorageError> {
    let (mut state, from) = ProducerState::load_snapshot(dir, log_end_offset, max_producers);
    // Nothing before `known_from` holds producers to rebuild.
    let from = from.max(known_from);
    let mut aborted = Vec::new();
    let first = segments.partition_point(|s| s.base_offset() <= from).saturating_sub(1);
    for segment in &segments[first..] {
        segment.reader()?.for_each_batch_from(from, |b| {
            if b.base_offset() < from || b.producer_id() < 0 {
                return;
            }
            if b.is_control() {
                let Some(commit) = marker_is_commit(b) else { return };
                let at = b.base_offset();
                let began =
                    state.complete_txn(b.producer_id(), b.producer_epoch(), now_ms, max_producers);
                if let (false, Some(first_offset)) = (commit, began) {
                    let last_stable_offset = state.first_unstable_offset().unwrap_or(at + 1);
                    let txn = AbortedTxn {
                        producer_id: b.producer_id(),
                        first_offset,
                        last_offset: at,
                        last_stable_offset,
                    };
                    aborted.push((segment.base_offset(), txn));
                }
            } else if b.base_sequence() >= 0 {
                let ib = IdempotentBatch {
                    producer_id: b.producer_id(),
                    epoch: b.producer_epoch(),
                    first_seq: b.base_sequence(),
                    // From the offsets, not the count: a batch that compaction emptied
                    // keeps its last offset delta, and so its last sequence (Kafka's rule).
                    record_count: b.last_offset_delta() + 1,
                    transactional: b.is_transactional(),
                };
                state.update(&ib, b.base_offset(), b.last_offset(), now_ms, max_producers);
            }
        });
    }
    Ok(Rebuilt { state, replayed_from: from, aborted })
}

/// Whether a control batch is a COMMIT (true) or ABORT (false) marker; `None` for other
/// control records or one that does not parse.
pub(crate) fn marker_is_commit(b: &RecordBatch<'_>) -> Option<bool> {
    let records = b.records(1 << 10).ok()?;
    let record = records.iter().next()?.ok()?;
    match record.control_type()? {
        ControlType::Commit => Some(true),
        ControlType::Abort => Some(false),
        ControlType::Other(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::io::RealIo;

    fn b(pid: i64, epoch: i16, first_seq: i32, count: i32) -> IdempotentBatch {
        IdempotentBatch {
            producer_id: pid,
            epoch,
            first_seq,
            record_count: count,
            transactional: false,
        }
    }

    fn txn(pid: i64, epoch: i16, first_seq: i32, count: i32) -> IdempotentBatch {
        IdempotentBatch { transactional: true, ..b(pid, epoch, first_seq, count) }
    }

    #[test]
    fn transactions_hold_the_last_stable_offset_until_their_markers() {
        let mut s = ProducerState::default();
        s.update(&txn(1, 0, 0, 5), 10, 14, 1000, usize::MAX);
        s.update(&txn(2, 0, 0, 1), 15, 15, 1000, usize::MAX);
        s.update(&txn(1, 0, 5, 1), 16, 16, 1000, usize::MAX);
        assert_eq!(s.first_unstable_offset(), Some(10));
        // A write outside the ongoing transaction is refused.
        assert!(matches!(s.check(&b(1, 0, 6, 1)), Err(StorageError::InvalidTxnState { .. })));
        assert_eq!(s.complete_txn(1, 0, 1000, usize::MAX), Some(10));
        assert_eq!(s.first_unstable_offset(), Some(15));
        assert_eq!(s.complete_txn(2, 0, 1000, usize::MAX), Some(15));
        assert_eq!(s.first_unstable_offset(), None);
        // A second marker finds nothing to end.
        assert_eq!(s.complete_txn(2, 0, 1000, usize::MAX), None);
        // The sequence goes on after a commit; the next transaction opens at its batch.
        assert_eq!(s.check(&txn(1, 0, 6, 1)).unwrap(), Check::Append);
    }

    #[test]
    fn a_marker_with_a_bumped_epoch_fences_the_old_one() {
        let mut s = ProducerState::default();
        s.update(&txn(1, 3, 0, 5), 0, 4, 1000, usize::MAX);
        assert!(matches!(
            s.check_marker(1, 2),
            Err(StorageError::InvalidProducerEpoch { current: 3, found: 2, .. })
        ));
        assert_eq!(s.complete_txn(1, 4, 1000, usize::MAX), Some(0));
        assert!(matches!(
            s.check(&txn(1, 3, 5, 1)),
            Err(StorageError::InvalidProducerEpoch { .. })
        ));
        assert_eq!(s.check(&txn(1, 4, 0, 1)).unwrap(), Check::Append);
    }

    #[test]
    fn a_producer_in_a_transaction_neither_expires_nor_is_evicted_and_survives_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProducerState::default();
        s.update(&txn(1, 0, 0, 1), 0, 0, 1000, 2);
        s.update(&b(2, 0, 0, 1), 1, 1, 1001, 2);
        s.update(&b(3, 0, 0, 1), 2, 2, 1002, 2);
        assert!(s.get(1).is_some() && s.get(2).is_none(), "the idle non-transactional one goes");
        assert_eq!(s.expire(1000 + DAY * 2, DAY), 1);
        assert!(s.get(1).is_some());
        s.write_snapshot(&RealIo, dir.path(), 3).unwrap();
        let (loaded, _) = ProducerState::load_snapshot(dir.path(), 3, usize::MAX);
        assert_eq!(loaded.first_unstable_offset(), Some(0));
        assert_eq!(loaded, s);
    }

    #[test]
    fn in_order_batches_append_and_a_retry_is_a_duplicate() {
        let mut s = ProducerState::default();
        assert_eq!(s.check(&b(7, 0, 0, 5)).unwrap(), Check::Append);
        s.update(&b(7, 0, 0, 5), 100, 104, 1000, usize::MAX);
        assert_eq!(s.check(&b(7, 0, 5, 3)).unwrap(), Check::Append);
        s.update(&b(7, 0, 5, 3), 105, 107, 1000, usize::MAX);
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
        s.update(&b(7, 0, 0, 5), 0, 4, 1000, usize::MAX);
        let err = s.check(&b(7, 0, 6, 1)).unwrap_err();
        assert!(
            matches!(err, StorageError::OutOfOrderSequence { expected: 5, found: 6, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_stale_epoch_is_fenced_and_a_new_epoch_starts_at_zero() {
        let mut s = ProducerState::default();
        s.update(&b(7, 3, 0, 1), 0, 0, 1000, usize::MAX);
        assert!(matches!(
            s.check(&b(7, 2, 1, 1)),
            Err(StorageError::InvalidProducerEpoch { current: 3, found: 2, .. })
        ));
        assert!(matches!(
            s.check(&b(7, 4, 9, 1)),
            Err(StorageError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(s.check(&b(7, 4, 0, 1)).unwrap(), Check::Append);
        s.update(&b(7, 4, 0, 1), 1, 1, 1000, usize::MAX);
        // The old epoch's batches are gone: its retry is fenced, not a duplicate.
        assert!(s.check(&b(7, 3, 0, 1)).is_err());
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerState::default();
        for i in 0..7 {
            s.update(&b(1, 0, i, 1), i64::from(i), i64::from(i), 1000, usize::MAX);
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
        s.update(&b(9, 0, i32::MAX - 1, 2), 0, 1, 1000, usize::MAX);
        assert_eq!(s.check(&b(9, 0, 0, 1)).unwrap(), Check::Append);
    }

    #[test]
    fn snapshots_round_trip_and_corrupt_ones_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProducerState::default();
        s.update(&b(1, 2, 0, 3), 10, 12, 1000, usize::MAX);
        s.update(&b(5, 0, 0, 1), 13, 13, 1000, usize::MAX);
        s.write_snapshot(&RealIo, dir.path(), 14).unwrap();
        assert_eq!(ProducerState::load_snapshot(dir.path(), 100, usize::MAX), (s.clone(), 14));
        // A corrupt newest snapshot is skipped for the one before it.
        s.update(&b(5, 0, 1, 1), 14, 14, 1000, usize::MAX);
        s.write_snapshot(&RealIo, dir.path(), 20).unwrap();
        let path = dir.path().join(crate::storage::segment_file_name(20, "snapshot"));
        let text = fs::read_to_string(&path).unwrap().replace("14:14", "14:15");
        fs::write(&path, text).unwrap();
        assert_eq!(ProducerState::load_snapshot(dir.path(), 100, usize::MAX).1, 14);
        // A snapshot past the log end describes a cut tail: not used.
        let (none, at) = ProducerState::load_snapshot(dir.path(), 13, usize::MAX);
        assert_eq!((none.len(), at), (0, 0));
    }

    const DAY: i64 = DEFAULT_PRODUCER_ID_EXPIRATION_MS;

    #[test]
    fn producers_expire_by_the_broker_clock_not_batch_timestamps() {
        let mut s = ProducerState::default();
        // Appended at broker time 1000 and 5000 (batch timestamps play no part).
        s.update(&b(1, 0, 0, 1), 0, 0, 1000, usize::MAX);
        s.update(&b(2, 0, 0, 1), 1, 1, 5000, usize::MAX);
        assert_eq!(s.expire(1000 + DAY - 1, DAY), 0);
        assert_eq!(s.expire(1000 + DAY, DAY), 1);
        assert!(s.get(1).is_none() && s.get(2).is_some());
        // An append renews the lease.
        s.update(&b(2, 0, 1, 1), 2, 2, 4000 + DAY, usize::MAX);
        assert_eq!(s.expire(5000 + DAY, DAY), 0);
        assert_eq!(s.expire(4000 + 2 * DAY, DAY), 1);
        assert_eq!(s.len(), 0);
        // An expired producer may start anywhere again, as in Kafka.
        assert_eq!(s.check(&b(2, 0, 77, 1)).unwrap(), Check::Append);
    }

    #[test]
    fn the_bound_evicts_the_longest_idle_producer() {
        let mut s = ProducerState::default();
        for pid in 0..3 {
            s.update(&b(pid, 0, 0, 1), pid, pid, 1000 + pid, 3);
        }
        // Producer 0 appends again: producer 1 is now the longest idle.
        s.update(&b(0, 0, 1, 1), 3, 3, 2000, 3);
        let evicted = s.update(&b(9, 0, 0, 1), 4, 4, 2001, 3);
        assert_eq!(evicted, 1);
        assert_eq!(s.len(), 3);
        assert!(s.get(1).is_none(), "the longest idle goes");
        assert!(s.get(0).is_some() && s.get(2).is_some() && s.get(9).is_some());
        // A staged set commits under the same bound.
        let mut staged = StagedProducers::default();
        s.stage(&mut staged, &b(10, 0, 0, 1), 5, 5);
        s.stage(&mut staged, &b(11, 0, 0, 1), 6, 6);
        assert_eq!(s.commit(staged, 3000, 3), 2);
        assert!(s.get(2).is_none() && s.get(0).is_none());
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn a_snapshot_keeps_append_times_and_recency_and_loads_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProducerState::default();
        for pid in 0..5 {
            s.update(&b(pid, 0, 0, 1), pid, pid, 1000 * (5 - pid), usize::MAX);
        }
        s.write_snapshot(&RealIo, dir.path(), 5).unwrap();
        let (loaded, _) = ProducerState::load_snapshot(dir.path(), 5, usize::MAX);
        assert_eq!(loaded, s);
        // Lowered to 2, the load keeps the two most recent appends: producers 0 and 1.
        let (mut small, _) = ProducerState::load_snapshot(dir.path(), 5, 2);
        assert_eq!(small.len(), 2);
        assert!(small.get(0).is_some() && small.get(1).is_some());
        assert_eq!(small.expire(4000 + DAY, DAY), 1, "producer 1 appended at 4000");
    }
}
