//! A partition as the request handlers see it: the synchronous [`PartitionLog`] with the
//! async entry points that hand its blocking work to [`crate::blocking`], and the list of
//! fetches long-polling it.
//!
//! After a clean shutdown a partition's log is opened on first use, not at start: a broker
//! of 100,000 partitions serves once it has read its catalog, and a partition nobody asks
//! for costs no file open, no map and no read until then.
//!
//! Appends of up to 1 MiB (a whole default-sized batch) run inline; larger ones run on
//! blocking threads. Syncs (durable mode) run on a blocking thread apart from the append,
//! and every request that waits meanwhile shares the next one: the async side of group
//! commit. Reads run inline: they are an index binary search and a few header loads from
//! the page cache, and return a file slice without copying.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use tokio_util::task::TaskTracker;

use crate::blocking;
use crate::metrics::{PartitionCounters, LOG_FLUSH_TIME};
use crate::schedule::{Schedule, Slot};
use crate::storage::io::RealIo;
use crate::storage::{
    now_ms, AppendInfo, CleanShutdown, Isolation, LogConfig, PartitionLog, ReadInfo,
    RecoveryJournal, SegmentHandles, StorageError, TxnMarker, TxnVerifier, ValidRecords,
};

/// Largest record set appended on the async thread itself: librdkafka's default batch
/// (`batch.size` 1,000,000 bytes) fits, so a typical produce request is never handed off.
pub const INLINE_APPEND_BYTES: usize = 1 << 20;

/// One partition of a topic.
#[derive(Debug)]
pub struct Partition {
    topic: String,
    index: i32,
    dir: PathBuf,
    log: OnceLock<Arc<PartitionLog>>,
    /// What the first use needs to open the log; `None` once it is open, or once the
    /// partition was closed or deleted unopened (then it never opens).
    opener: Mutex<Option<LogOpener>>,
    /// The broker's recovery journal: the partition is named in it before its first write
    /// (none for a partition used on its own).
    journal: Option<Arc<RecoveryJournal>>,
    /// Named in the journal already (or there is none).
    journaled: AtomicBool,
    /// Whether the unopened log has a sealed segment, once looked up.
    sealed_on_disk: OnceLock<bool>,
    waiters: Mutex<Vec<Arc<Notify>>>,
    syncer: Arc<Syncer>,
    /// Where the sync tasks run: the catalog's one tracker, which shutdown waits on before
    /// the partitions close, or, for a partition used on its own, a tracker of its own.
    tasks: TaskTracker,
    /// The background flusher's schedule (none for a partition used on its own), and this
    /// partition's place in it.
    schedule: Option<Arc<Schedule>>,
    slot: Arc<Slot>,
    counters: PartitionCounters,
}

/// How a partition's log is opened on first use. Only a partition the last shutdown left
/// clean is opened lazily (a crash's are recovered at start), so the open recovers nothing.
#[derive(Debug)]
pub struct LogOpener {
    /// The topic's config; changes made before the open land here.
    pub config: LogConfig,
    /// The broker's one bound on open segment files.
    pub handles: Arc<SegmentHandles>,
}

/// The one sync in progress for a partition, and the news of each that ends.
#[derive(Debug)]
struct Syncer {
    running: AtomicBool,
    /// Bumped whenever a sync ends, failed ones included; the log holds the outcome.
    ended: watch::Sender<()>,
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(topic: &str, index: i32, log: PartitionLog) -> Self {
        let partition = Partition::unopened(topic, index, log.dir().to_owned(), None);
        partition.log.set(Arc::new(log)).expect("invariant: a new cell is empty");
        partition
    }

    /// A partition whose log in `dir` opens on first use, as `opener` says.
    pub fn lazy(topic: &str, index: i32, dir: PathBuf, opener: LogOpener) -> Self {
        Partition::unopened(topic, index, dir, Some(opener))
    }

    fn unopened(topic: &str, index: i32, dir: PathBuf, opener: Option<LogOpener>) -> Self {
        Partition {
            topic: topic.to_owned(),
            index,
            dir,
            log: OnceLock::new(),
            opener: Mutex::new(opener),
            journal: None,
            journaled: AtomicBool::new(true),
            sealed_on_disk: OnceLock::new(),
            waiters: Mutex::new(Vec::new()),
            syncer: Arc::new(Syncer {
                running: AtomicBool::new(false),
                ended: watch::Sender::new(()),
            }),
            tasks: TaskTracker::new(),
            schedule: None,
            slot: Arc::new(Slot::new(topic, index)),
            counters: PartitionCounters::default(),
        }
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// The partition index.
    pub fn index(&self) -> i32 {
        self.index
    }
    /// Has the partition named in `journal` before its first write; `listed`: it is
    /// there already.
    #[must_use]
    pub fn journaled_in(mut self, journal: &Arc<RecoveryJournal>, listed: bool) -> Self {
        self.journal = Some(Arc::clone(journal));
        self.journaled = AtomicBool::new(listed);
        self
    }

    /// Runs the partition's sync tasks in `tasks`, which the owner waits on before it
    /// closes the partition.
    #[must_use]
    pub fn tracked_by(mut self, tasks: &TaskTracker) -> Self {
        self.tasks = tasks.clone();
        self
    }

    /// Has the background flusher visit the log when it has something due (see
    /// [`crate::schedule`]); an open log is scheduled now.
    #[must_use]
    pub fn scheduled_in(mut self, schedule: &Arc<Schedule>) -> Self {
        self.schedule = Some(Arc::clone(schedule));
        if let Some(log) = self.log.get() {
            self.schedule_background(log);
        }
        self
    }

    /// Schedules the log for when it is next due, after something changed it: a look at
    /// the log's state, and the schedule's lock only when that is sooner than the slot's
    /// time (not in the steady state of appends).
    fn schedule_background(&self, log: &Arc<PartitionLog>) {
        let Some(schedule) = &self.schedule else { return };
        let now = now_ms();
        // Due already: the visit, soon, asks again.
        if self.slot.scheduled_at().is_some_and(|at| at <= now) {
            return;
        }
        if let Some(at) = log.background_due(now) {
            schedule.insert(&self.slot, log, at);
        }
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The log, opened now if this is its first use, for synchronous calls that are cheap
    /// (offsets, config). After a clean shutdown an open reads a few small files and writes
    /// nothing (about 70 µs with a warm page cache), so it runs wherever the first use
    /// does; requests naming many partitions open them first with [`Self::open_unopened`].
    /// Appends go through the partition's own methods, not the log's: they name the
    /// partition in the recovery journal first, without which a crash would not recover it.
    ///
    /// # Errors
    /// The open's storage error (it is tried again on the next use), or
    /// [`StorageError::Closed`] for a partition closed or deleted before it was opened.
    pub fn log(&self) -> Result<&Arc<PartitionLog>, StorageError> {
        if let Some(log) = self.log.get() {
            return Ok(log);
        }
        let mut opener = self.opener.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(log) = self.log.get() {
            return Ok(log);
        }
        let Some(o) = opener.as_ref() else {
            return Err(StorageError::Closed { path: self.dir.clone() });
        };
        let opened = PartitionLog::open_shared(
            &self.dir,
            o.config.clone(),
            Arc::new(RealIo),
            Arc::clone(&o.handles),
            CleanShutdown::DataDir { clean: true },
        )?;
        // Set while the lock is held: whoever takes it next sees the log, not the opener.
        let log = self.log.get_or_init(|| Arc::new(opened));
        *opener = None;
        drop(opener);
        self.schedule_background(log);
        Ok(log)
    }

    /// Opens, on a blocking thread, the logs of `partitions` not opened yet, so that a
    /// request naming many partitions unused since the start does not open them one by one
    /// on the async thread. Failures are left for the use to report.
    pub fn open_unopened<'a>(
        partitions: impl IntoIterator<Item = &'a Arc<Partition>>,
    ) -> impl std::future::Future<Output = ()> + Send {
        Partition::prepare(partitions, false)
    }

    /// [`Self::open_unopened`] for partitions about to be written, which also names those
    /// not yet in the recovery journal there in one synced append, not one each.
    pub fn prepare_writes<'a>(
        partitions: impl IntoIterator<Item = &'a Arc<Partition>>,
    ) -> impl std::future::Future<Output = ()> + Send {
        Partition::prepare(partitions, true)
    }

    fn prepare<'a>(
        partitions: impl IntoIterator<Item = &'a Arc<Partition>>,
        writes: bool,
    ) -> impl std::future::Future<Output = ()> + Send {
        // Collected before the future: it holds neither the iterator nor its borrows, and
        // only the partitions with something to do are cloned.
        let due: Vec<Arc<Partition>> = partitions
            .into_iter()
            .filter(|p| p.opened().is_none() || (writes && !p.is_journaled()))
            .cloned()
            .collect();
        async move {
            if due.is_empty() {
                return;
            }
            // Failures, a panic included, are left for the use to report too.
            blocking::run("open partitions", move || {
                if writes {
                    journal_all(&due);
                }
                for p in due {
                    let _ = p.log();
                }
            })
            .or_log()
            .await;
        }
    }

    fn is_journaled(&self) -> bool {
        self.journaled.load(Ordering::Acquire)
    }

    /// The partition's directory name, as the recovery journal holds it.
    fn journal_name(&self) -> &str {
        self.dir.file_name().and_then(|n| n.to_str()).unwrap_or_default()
    }

    /// Names the partition in the recovery journal, durably, unless it is there: before
    /// every write, so that a crash recovers it.
    fn journal_before_write(&self) -> Result<(), StorageError> {
        if self.is_journaled() {
            return Ok(());
        }
        if let Some(journal) = &self.journal {
            journal.add([self.journal_name()])?;
        }
        self.journaled.store(true, Ordering::Release);
        Ok(())
    }

    /// The log if it has been opened: background work skips a partition nobody has used,
    /// which has nothing to sync, expire or report.
    pub fn opened(&self) -> Option<&Arc<PartitionLog>> {
        self.log.get()
    }

    /// Whether retention or the cleaner may have work here, which for either takes a sealed
    /// segment: an opened log may; one not opened since the start only with a sealed
    /// segment in its directory, looked up once (nothing changes it before it opens).
    pub fn may_have_sealed_segments(&self) -> bool {
        if self.log.get().is_some() {
            return true;
        }
        *self.sealed_on_disk.get_or_init(|| crate::storage::has_sealed_segments(&self.dir))
    }

    /// The topic config the log runs with (or will open with).
    pub fn config(&self) -> LogConfig {
        if let Some(log) = self.log.get() {
            return log.config();
        }
        let opener = self.opener.lock().unwrap_or_else(PoisonError::into_inner);
        match (self.log.get(), opener.as_ref()) {
            (Some(log), _) => log.config(),
            (None, Some(o)) => o.config.clone(),
            (None, None) => LogConfig::default(),
        }
    }

    /// Applies a changed topic config, to the open log or to the one that opens later.
    pub fn set_config(&self, config: LogConfig) {
        let mut opener = self.opener.lock().unwrap_or_else(PoisonError::into_inner);
        match (self.log.get(), opener.as_mut()) {
            (Some(log), _) => {
                log.set_config(config);
                drop(opener);
                // A flush.ms set now may make it due sooner.
                self.schedule_background(log);
            }
            (None, Some(o)) => o.config = config,
            (None, None) => {}
        }
    }

    /// Closes the log for a graceful shutdown, syncing nothing (see
    /// [`PartitionLog::close_unsynced`]: the caller syncs the file system before it writes
    /// the data directory's clean-shutdown marker). A partition never opened is left as it
    /// is on disk, clean, and does not open afterwards.
    ///
    /// # Errors
    /// The close's storage error.
    pub fn close_unsynced(&self) -> Result<(), StorageError> {
        self.opener.lock().unwrap_or_else(PoisonError::into_inner).take();
        match self.log.get() {
            Some(log) => log.close_unsynced(),
            None => Ok(()),
        }
    }

    /// Stops the log for good: its files are about to be removed (the topic was deleted),
    /// so nothing of it needs syncing and an unopened one never opens.
    pub fn abandon(&self) {
        self.opener.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(log) = self.log.get() {
            log.abandon();
        }
    }
    /// What produce and fetch requests did here (Kafka's BrokerTopicMetrics).
    pub fn counters(&self) -> &PartitionCounters {
        &self.counters
    }

    /// Appends a record set and wakes the fetches waiting here. Returns, with where the
    /// records landed, the offset that must be synced before they are acknowledged
    /// (durable mode): wait for it with [`Self::sync_to`].
    ///
    /// A set of at most [`INLINE_APPEND_BYTES`] is written inline. A pwritev of 1 MiB into
    /// the page cache takes a few hundred microseconds; the hand-off to a blocking thread
    /// cost more in total (a futex wake, an eventfd wake of the runtime and about four
    /// context switches per request: a quarter of the broker's CPU under `perf stat`), and
    /// did not improve latency beside a bulk producer in `e2e_perf`. A dirty-page throttle
    /// in the kernel can block any write, small or large, so the threshold is not a guard
    /// against that. Larger sets go to a blocking thread.
    ///
    /// # Errors
    /// The storage error.
    ///
    /// # Panics
    /// A panic of the append is resumed here, inline or handed off alike.
    pub async fn append(
        &self,
        records: ValidRecords<Bytes>,
        verify: Option<TxnVerifier>,
    ) -> Result<(AppendInfo, Option<i64>), StorageError> {
        let (count, bytes) = (records.offset_count() as u64, records.len() as u64);
        let log = self.log()?;
        self.journal_before_write()?;
        let result = if records.len() <= INLINE_APPEND_BYTES {
            log.append_verified(&records, verify.as_ref())
        } else {
            let log = Arc::clone(log);
            // A panic is resumed here, as one in an inline append panics here.
            blocking::run("append", move || log.append_verified(&records, verify.as_ref())).await
        };
        if result.is_ok() {
            self.counters.appended(count, bytes);
            self.wake();
            self.schedule_background(log);
        }
        result
    }

    /// Waits until every record below `offset` is on disk.
    ///
    /// At most one sync runs per partition, on a blocking thread; requests that arrive
    /// meanwhile wait for it to end and then share the next, which covers everything
    /// appended by then. The sync runs in its own task, so a waiter that goes away (its
    /// connection closed) does not leave the partition without one; the task is tracked
    /// (see [`Self::tracked_by`]), so a shutdown lets it end before the partition closes.
    ///
    /// # Errors
    /// [`StorageError::Poisoned`] once a sync has failed (the failure itself is logged).
    pub async fn sync_to(&self, offset: i64) -> Result<(), StorageError> {
        // Subscribed before the checks: a sync that ends after them still wakes this.
        let mut ended = self.syncer.ended.subscribe();
        let log = self.log()?;
        loop {
            if log.flushed_offset() >= offset {
                return Ok(());
            }
            if log.is_poisoned() {
                return Err(StorageError::Poisoned { path: self.dir.clone() });
            }
            if !self.syncer.running.swap(true, Ordering::AcqRel) {
                let log = Arc::clone(log);
                let syncer = Arc::clone(&self.syncer);
                self.tasks.spawn(async move {
                    // Errors poison the log, which every waiter sees on its next check; after
                    // a panic (logged) the flag is cleared all the same and the next waiter
                    // starts another sync.
                    blocking::run("partition sync", move || {
                        let started = std::time::Instant::now();
                        let flushed = log.flush();
                        LOG_FLUSH_TIME.record(started.elapsed());
                        flushed
                    })
                    .or_log()
                    .await;
                    syncer.running.store(false, Ordering::Release);
                    syncer.ended.send_replace(());
                });
            }
            if ended.changed().await.is_err() {
                // The sender lives as long as `self`; this is unreachable in practice.
                return Err(StorageError::Closed { path: self.dir.clone() });
            }
        }
    }

    /// Appends a record set that the caller built in memory, synchronously (internal
    /// topics; small writes).
    ///
    /// # Errors
    /// The storage error.
    pub fn append_blocking(&self, records: &[u8]) -> Result<AppendInfo, StorageError> {
        let log = self.log()?;
        self.journal_before_write()?;
        let result = log.append(records);
        if result.is_ok() {
            self.wake();
            self.schedule_background(log);
        }
        result
    }

    /// Writes a transaction marker, synchronously (the transaction coordinator, on a
    /// blocking thread); see [`PartitionLog::append_txn_marker`]. Wakes the fetches
    /// waiting here: a read_committed one may now read further.
    ///
    /// # Errors
    /// The storage error.
    pub fn append_txn_marker_blocking(
        &self,
        marker: &TxnMarker,
    ) -> Result<AppendInfo, StorageError> {
        let log = self.log()?;
        self.journal_before_write()?;
        let result = log.append_txn_marker(marker);
        if result.is_ok() {
            self.wake();
            self.schedule_background(log);
        }
        result
    }

    /// Reads whole batches from `offset`; see [`PartitionLog::read`].
    ///
    /// # Errors
    /// The storage error (offset out of range).
    pub fn read(&self, offset: i64, max_bytes: u64) -> Result<ReadInfo, StorageError> {
        self.log()?.read(offset, max_bytes)
    }

    /// Reads whole batches from `offset` at an isolation level; see
    /// [`PartitionLog::read_isolated`].
    ///
    /// # Errors
    /// The storage error (offset out of range).
    pub fn read_isolated(
        &self,
        offset: i64,
        max_bytes: u64,
        isolation: Isolation,
    ) -> Result<ReadInfo, StorageError> {
        self.log()?.read_isolated(offset, max_bytes, isolation)
    }

    /// Registers a fetch to be woken by the next append. Register before checking for
    /// data: `Notify` keeps the wake-up if it comes between the check and the wait.
    pub fn register_waiter(&self, waiter: &Arc<Notify>) {
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        // Fetches that ended hold no other reference: drop them here, so a partition that
        // nobody appends to does not collect them without bound.
        waiters.retain(|w| Arc::strong_count(w) > 1);
        if !waiters.iter().any(|w| Arc::ptr_eq(w, waiter)) {
            waiters.push(Arc::clone(waiter));
        }
    }

    fn wake(&self) {
        let waiters =
            std::mem::take(&mut *self.waiters.lock().unwrap_or_else(PoisonError::into_inner));
        for w in waiters {
            w.notify_one();
        }
    }
}

/// Names every partition of `partitions` not yet in its journal, in one synced append
/// (they share the broker's one journal). A failure leaves them unnamed: each tries again
/// before its write, and fails that write if it fails again.
fn journal_all(partitions: &[Arc<Partition>]) {
    let Some(journal) = partitions.iter().find_map(|p| p.journal.as_ref()) else { return };
    let unnamed: Vec<&Arc<Partition>> = partitions
        .iter()
        .filter(|p| {
            !p.is_journaled() && p.journal.as_ref().is_some_and(|j| Arc::ptr_eq(j, journal))
        })
        .collect();
    match journal.add(unnamed.iter().map(|p| p.journal_name())) {
        Ok(()) => unnamed.iter().for_each(|p| p.journaled.store(true, Ordering::Release)),
        Err(e) => tracing::warn!(error = %e, "cannot write the recovery journal"),
    }
}

#[cfg(test)]
mod tests;
