//! Opening a partition: its segments (after a crash, those `recovery` picks are
//! recovered), the checkpoints it trusts, and the producer state and aborted-transaction
//! index rebuilt from the log's tail.

use super::*;
use crate::storage::checkpoint::{
    read_recovery_point, CLEANER_CHECKPOINT, LOG_START_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
};
use crate::storage::DEFAULT_OPEN_SEGMENTS;

impl PartitionLog {
    /// Opens the partition in `dir`, creating it when absent, and recovers it when it was
    /// not closed cleanly.
    ///
    /// # Errors
    /// I/O errors, and files that cannot be made sense of.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Self, StorageError> {
        Self::open_with_io(dir, config, Arc::new(RealIo))
    }

    /// [`Self::open`] with a given [`FileIo`] (fault injection in tests).
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn open_with_io(
        dir: &Path,
        config: LogConfig,
        io: Arc<dyn FileIo>,
    ) -> Result<Self, StorageError> {
        let handles = SegmentHandles::new(DEFAULT_OPEN_SEGMENTS);
        Self::open_shared(dir, config, io, handles, CleanShutdown::OwnMarker)
    }

    /// [`Self::open_with_io`] with the broker's cache of open segment files, which bounds
    /// the descriptors and maps of every partition together, and `clean_shutdown` telling
    /// where a clean close is recorded. A partition's own marker counts as clean in
    /// either case (a data directory written before the broker kept one marker).
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn open_shared(
        dir: &Path,
        config: LogConfig,
        io: Arc<dyn FileIo>,
        handles: Arc<SegmentHandles>,
        clean_shutdown: CleanShutdown,
    ) -> Result<Self, StorageError> {
        fs::create_dir_all(dir).map_err(|e| StorageError::io("create partition dir", dir, e))?;
        let own_marker = dir.join(CLEAN_SHUTDOWN_MARKER).exists();
        let clean = own_marker || clean_shutdown == CleanShutdown::DataDir { clean: true };
        compaction::finish_interrupted_swaps(dir)?;
        let (bases, snapshots) = segment_bases(dir)?;
        let checkpoint = checkpoint::read(dir, LOG_START_CHECKPOINT)?;
        let recovery_point = if clean { None } else { Some(read_recovery_point(dir)) };
        let mut segments = recovery::open_segments(dir, &bases, recovery_point, &config, &handles)?;
        if segments.is_empty() {
            let base = checkpoint.unwrap_or(0);
            let (cap, idx) = capacities(&config, 0);
            segments.push(Arc::new(Segment::create(
                &handles,
                dir,
                base,
                cap,
                idx,
                config.index_interval_bytes,
            )?));
        }
        let log_end_offset =
            segments.last().expect("invariant: at least one segment").next_offset();
        let first_base = segments[0].base_offset();
        let log_start_offset = checkpoint.unwrap_or(first_base).clamp(first_base, log_end_offset);
        // A clean close writes a producer snapshot whenever the log holds producers (as
        // Kafka's does): with none, there is nothing to rebuild, and no replay of every
        // batch header of the log (1.2 GiB of page cache touched for a 1.6 GB log).
        let no_producers = clean && !snapshots;
        let rebuilt = rebuild_producers(
            dir,
            &segments,
            if no_producers { log_end_offset } else { i64::MIN },
            log_end_offset,
            now_ms(),
            config.max_producers_per_partition,
        )?;
        let aborted = load_aborted(io.as_ref(), &segments, &rebuilt, log_end_offset)?;
        let producers = rebuilt.state;
        let first_unstable_offset = producers.first_unstable_offset().unwrap_or(i64::MAX);
        // What was recovered was read from the page cache, not necessarily the disk.
        let flushed_offset = match recovery_point {
            None => log_end_offset,
            Some(rp) => rp.clamp(first_base, log_end_offset),
        };
        let log_start_checkpoint =
            OffsetCheckpoint::new(dir, LOG_START_CHECKPOINT, checkpoint.unwrap_or(i64::MIN));
        if checkpoint.is_some_and(|c| c > log_start_offset) {
            // Past a log that recovery cut short: record the start in effect, or a later
            // crash would skip records appended from here.
            log_start_checkpoint.reset(io.as_ref(), log_start_offset)?;
        }
        // A new log without the file recovers from its only segment's base, as the file
        // holding that base would: nothing to write for it until data is flushed.
        let new_log = bases.is_empty() && recovery_point == Some(i64::MIN);
        let recovery_point_checkpoint = OffsetCheckpoint::new(
            dir,
            RECOVERY_POINT_CHECKPOINT,
            if new_log { first_base } else { recovery_point.unwrap_or(flushed_offset) },
        );
        if recovery_point.is_some_and(|rp| rp > flushed_offset) {
            // Recovery cut the log below the recorded point: record the lower one, or
            // records appended from here would not be recovered after the next crash.
            recovery_point_checkpoint.reset(io.as_ref(), flushed_offset)?;
        }
        Ok(PartitionLog {
            dir: dir.to_owned(),
            config: RwLock::new(config),
            segments: RwLock::new(Arc::new(segments)),
            writer: Mutex::new(Writer {
                closed: false,
                producers,
                marker_present: own_marker,
                snapshot_current: clean,
                pending_snapshot: None,
            }),
            log_end_offset: AtomicI64::new(log_end_offset),
            log_start_offset: AtomicI64::new(log_start_offset),
            log_start_checkpoint,
            recovery_point_checkpoint,
            clean_shutdown,
            io,
            handles,
            flush: Mutex::new(FlushState {
                running: false,
                flushed_offset,
                last_flush_ms: now_ms(),
            }),
            flushed: Condvar::new(),
            poisoned: AtomicBool::new(false),
            snapshot_pending: AtomicBool::new(false),
            // Open may have created the first segment; the first sync makes sure.
            dir_dirty: AtomicBool::new(true),
            syncs: AtomicU64::new(0),
            cleaner_checkpoint: OffsetCheckpoint::new(
                dir,
                CLEANER_CHECKPOINT,
                checkpoint::read(dir, CLEANER_CHECKPOINT).unwrap_or_else(|e| {
                    // Cleaning from the start again loses nothing.
                    tracing::warn!(partition = %dir.display(), error = %e, "unreadable cleaner checkpoint: the whole log is dirty");
                    None
                }).unwrap_or(i64::MIN),
            ),
            cleaning: AtomicBool::new(false),
            swap_lock: Mutex::new(()),
            delete_horizon: AtomicI64::new(-1),
            first_unstable_offset: AtomicI64::new(first_unstable_offset),
            aborted: RwLock::new(aborted),
        })
    }
}

/// The aborted transactions at open: each segment's `.txnindex` entries below where the
/// producer replay started, and the replay's own from there on (which also covers a
/// recovered tail whose index lost entries, or a cut log whose index has too many). A
/// segment's file is rewritten when it differs from that.
fn load_aborted(
    io: &dyn FileIo,
    segments: &[Arc<Segment>],
    rebuilt: &Rebuilt,
    log_end_offset: i64,
) -> Result<AbortedTxns, StorageError> {
    let from = rebuilt.replayed_from;
    let mut all = Vec::new();
    for segment in segments {
        let path = segment.txn_index_path();
        let on_disk = txn_index::read(&path)?;
        let mut entries: Vec<AbortedTxn> = on_disk
            .iter()
            .filter(|e| e.last_offset < from && e.last_offset < log_end_offset)
            .copied()
            .collect();
        entries.extend(
            rebuilt
                .aborted
                .iter()
                .filter(|(base, _)| *base == segment.base_offset())
                .map(|(_, e)| *e),
        );
        if entries != on_disk {
            txn_index::rewrite(io, &path, &entries)?;
        }
        all.extend(entries);
    }
    Ok(AbortedTxns::new(all))
}

/// A segment file's base offset (a 20-digit name) and its extension.
fn segment_file(name: &str) -> (Option<i64>, &str) {
    let Some((stem, ext)) = name.split_once('.') else { return (None, "") };
    ((stem.len() == 20).then(|| stem.parse::<i64>().ok()).flatten(), ext)
}

/// Whether the log in `dir` has a segment besides its active one, read from the names
/// in the directory and changing nothing: retention and the cleaner act only on sealed
/// segments, so a partition not opened since the start need not be opened for them
/// without one. False when the directory cannot be listed.
pub fn has_sealed_segments(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else { return false };
    let logs = entries
        .flatten()
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| matches!(segment_file(n), (Some(_), "log")))
        })
        .take(2)
        .count();
    logs > 1
}

/// Base offsets of the `.log` files in `dir`, sorted, and whether it holds producer
/// snapshots; removes leftovers of interrupted
/// operations (temporary checkpoint files, index files without a log).
fn segment_bases(dir: &Path) -> Result<(Vec<i64>, bool), StorageError> {
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    let mut snapshots = false;
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io("list partition dir", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io("list partition dir", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let (parsed, ext) = segment_file(name);
        match (parsed, ext) {
            (Some(base), "log") => bases.push(base),
            (Some(base), "index" | "timeindex" | txn_index::EXTENSION) => {
                indexes.push((base, entry.path()));
            }
            (Some(_), "snapshot") => snapshots = true,
            _ if name.ends_with(durable::TEMP_SUFFIX) => {
                // A durable file's write cut short by a crash; never read.
                let _ = fs::remove_file(entry.path());
            }
            _ => {}
        }
    }
    bases.sort_unstable();
    for (base, path) in indexes {
        if bases.binary_search(&base).is_err() {
            let _ = fs::remove_file(&path);
        }
    }
    Ok((bases, snapshots))
}
