//! Swapping a cleaned segment in for the segments it replaces, and finishing at open what
//! a crash left of a swap.
//!
//! The swap of segments `b0, b1, .., bk` cleaned into one segment at `b0`, in Kafka's
//! `.cleaned` / `.swap` steps (`UnifiedLog.replaceSegments`):
//! ```text
//! 1. <b0>.log.cleaned, .index.cleaned, .timeindex.cleaned (and, when it merges segments
//!    with aborted transactions, .txnindex.cleaned) written and synced
//! 2. the indexes renamed to .swap, then the log to <b0>.log.swap; dir synced  <- commit
//! 3. (under the swap lock) b1..bk retired and their files removed; dir synced
//! 4. b0 retired; the indexes renamed over <b0>.index / .timeindex / .txnindex, then the
//!    log over <b0>.log; dir synced; the segment list holds the new segment in their place
//! ```
//! At open, [`finish_interrupted_swaps`] removes every `.cleaned` file (before step 2 the
//! old segments stay) and completes every `<b0>.log.swap` whose `<b0>.log` exists: it
//! removes the segments whose base offset is in `(b0, next)`, `next` being the offset
//! after the swap log's last batch (read from its batch headers), syncs the directory and
//! renames as step 4 does. That range holds exactly `b1..bk` because a swap replaces only
//! the segments whose base is below the cleaned segment's end (see `group`); the group's
//! segments past that end kept nothing, and go after the swap as any emptied segment
//! goes. The next segment's base would not do: at open nothing tells which segment
//! followed the group, and a cleaned segment may end in a hole below it.
//!
//! A swap whose `<b0>.log` is gone belonged to segments that retention deleted
//! meanwhile, and goes, its log first (see [`discard_swap`]). Index `.swap` files without
//! a log `.swap` are leftovers of a step 2 cut short. Step 3 is synced before step 4
//! renames anything, because a segment of the group left beside the merged one would
//! overlap its offsets. So a crash at any point leaves the old segments or the new one,
//! whole. Groups are swapped oldest first, so a record is only ever gone when the record
//! that replaced it, later in the log, is there (or was itself a tombstone past its
//! horizon, whose older values went in earlier swaps of the same pass).
//!
//! A reader that holds a replaced segment's files keeps reading them (the descriptor and
//! mappings outlive the names); one that finds a segment retired reads again from the new
//! segment list, which is installed right after step 4.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};
use std::time::SystemTime;

use crate::storage::io::{FileIo, RealIo};
use crate::storage::partition_log::{capacities, lock, PartitionLog};
use crate::storage::segment::{next_offset_from_headers, Role, Segment};
use crate::storage::txn_index::{self, AbortedTxn};
use crate::storage::{segment_file_name, StorageError};

pub(super) const CLEANED_SUFFIX: &str = ".cleaned";
pub(super) const SWAP_SUFFIX: &str = ".swap";
/// A cleaned segment's files in the order they are renamed: the log last, as the commit.
/// Only the `.txnindex` may be missing (no abort to list).
const SWAP_EXTENSIONS: [&str; 4] = ["index", "timeindex", txn_index::EXTENSION, "log"];

pub(super) fn suffixed(dir: &Path, base: i64, ext: &str, suffix: &str) -> PathBuf {
    let mut name = segment_file_name(base, ext);
    name.push_str(suffix);
    dir.join(name)
}

impl PartitionLog {
    /// Steps 1 and 2: builds the indexes of `<base>.log.cleaned` beside it, writes the
    /// `.txnindex` of a merge's `aborted` transactions, dates the log `modified` (the last
    /// replaced segment's time, as Kafka keeps it for ListOffsets v0), syncs them and
    /// renames them to `.swap`, the log last, then syncs the directory.
    pub(super) fn commit_cleaned(
        &self,
        base: i64,
        len: u64,
        aborted: &[AbortedTxn],
        modified: Option<SystemTime>,
        config: &crate::storage::LogConfig,
    ) -> Result<(), StorageError> {
        let dir = &self.dir;
        let log = suffixed(dir, base, "log", CLEANED_SUFFIX);
        let (_, index_capacity) = capacities(config, len);
        let role = Role::Active { capacity: len, index_capacity };
        let interval = config.index_interval_bytes;
        let s = Segment::open_with_suffix(
            &self.handles,
            dir,
            &log,
            base,
            role,
            false,
            interval,
            CLEANED_SUFFIX,
        )?;
        if s.size() != len {
            return Err(StorageError::Corrupt {
                path: log,
                reason: format!("cleaned segment reads back {} of its {len} bytes", s.size()),
            });
        }
        s.finish_time_index(&RealIo)?;
        s.trim()?;
        drop(s);
        if let Some(t) = modified {
            // Best effort, as at a roll: a lost time only moves a ListOffsets v0 answer.
            let _ = fs::OpenOptions::new().write(true).open(&log).and_then(|f| f.set_modified(t));
        }
        for ext in ["index", "timeindex"] {
            let p = suffixed(dir, base, ext, CLEANED_SUFFIX);
            let f = File::open(&p).map_err(|e| StorageError::io("open", &p, e))?;
            self.io.sync_file(&f).map_err(|e| StorageError::io("sync", &p, e))?;
        }
        if !aborted.is_empty() {
            let p = suffixed(dir, base, txn_index::EXTENSION, CLEANED_SUFFIX);
            txn_index::rewrite(self.io.as_ref(), &p, aborted)?;
        }
        for ext in SWAP_EXTENSIONS {
            let from = suffixed(dir, base, ext, CLEANED_SUFFIX);
            if ext == txn_index::EXTENSION && !from.exists() {
                continue;
            }
            let to = suffixed(dir, base, ext, SWAP_SUFFIX);
            self.io.rename(&from, &to).map_err(|e| StorageError::io("rename", &to, e))?;
        }
        self.io.sync_dir(dir).map_err(|e| StorageError::io("sync directory", dir, e))
    }

    /// Steps 3 and 4: the segments `old` (consecutive, oldest first) replaced by the
    /// committed swap at `old[0]`'s base. Segments that retention removed meanwhile keep
    /// their removal: the swap goes.
    pub(super) fn swap_in(
        &self,
        old: &[Arc<Segment>],
        config: &crate::storage::LogConfig,
    ) -> Result<(), StorageError> {
        let base = old[0].base_offset();
        let dir = &self.dir;
        let _swap = lock(&self.swap_lock);
        let segments = self.segments();
        // The active segment follows the sealed ones that a pass cleans.
        let present = segments.iter().position(|s| Arc::ptr_eq(s, &old[0])).is_some_and(|i| {
            segments.len() > i + old.len()
                && segments[i..i + old.len()].iter().zip(old).all(|(s, o)| Arc::ptr_eq(s, o))
        });
        if !present || lock(&self.writer).closed {
            discard_swap(self.io.as_ref(), dir, base);
            return Ok(());
        }
        if old.len() > 1 {
            for s in &old[1..] {
                s.delete_files()?;
            }
            self.io.sync_dir(dir).map_err(|e| StorageError::io("sync directory", dir, e))?;
        }
        // The first segment never opens its files again: they are about to be replaced.
        old[0].retire();
        for ext in SWAP_EXTENSIONS {
            let from = suffixed(dir, base, ext, SWAP_SUFFIX);
            if ext == txn_index::EXTENSION && !from.exists() {
                continue;
            }
            let to = dir.join(segment_file_name(base, ext));
            self.io.rename(&from, &to).map_err(|e| StorageError::io("rename over", &to, e))?;
        }
        self.io.sync_dir(dir).map_err(|e| StorageError::io("sync directory", dir, e))?;
        let path = dir.join(segment_file_name(base, "log"));
        let new = Arc::new(Segment::open(
            &self.handles,
            dir,
            &path,
            base,
            Role::Sealed,
            true,
            config.index_interval_bytes,
        )?);
        if old.len() > 1 {
            tracing::debug!(segment = %path.display(), merged = old.len(), next_offset = new.next_offset(), "swapped in a cleaned segment for a group");
        }
        self.replace_segments(old, Some(new));
        Ok(())
    }

    /// Removes a segment whose every batch was cleaned away: out of the list first, then
    /// its log durably, then its indexes (which an open without the log removes anyway).
    pub(super) fn remove_cleaned_away(&self, old: &Arc<Segment>) -> Result<(), StorageError> {
        let _swap = lock(&self.swap_lock);
        if !self.segments().iter().any(|s| Arc::ptr_eq(s, old)) || lock(&self.writer).closed {
            return Ok(());
        }
        self.replace_segments(std::slice::from_ref(old), None);
        tracing::info!(segment = %old.log_path().display(), "removing segment: compaction kept none of its records");
        old.retire();
        crate::storage::durable::remove(self.io.as_ref(), old.log_path())?;
        old.delete_files()
    }

    /// Puts `new` (or nothing) in the list in place of the consecutive segments `old`.
    fn replace_segments(&self, old: &[Arc<Segment>], new: Option<Arc<Segment>>) {
        let _writer = lock(&self.writer);
        let mut list: Vec<Arc<Segment>> = self.segments().as_ref().clone();
        if let Some(i) = list.iter().position(|s| Arc::ptr_eq(s, &old[0])) {
            list.splice(i..i + old.len(), new);
        }
        *self.segments.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(list);
    }
}

/// Removes what a swap at `base` left: the log's `.swap` (or `.cleaned`) first, and the
/// directory synced, so that a crash while the rest goes cannot leave a committed swap to
/// be completed with some of its indexes gone. Best effort: what stays, an open removes.
pub(super) fn discard_swap(io: &dyn FileIo, dir: &Path, base: i64) {
    let mut removed = false;
    for suffix in [SWAP_SUFFIX, CLEANED_SUFFIX] {
        removed |= fs::remove_file(suffixed(dir, base, "log", suffix)).is_ok();
    }
    if removed {
        let _ = io.sync_dir(dir);
    }
    for ext in SWAP_EXTENSIONS {
        for suffix in [SWAP_SUFFIX, CLEANED_SUFFIX] {
            let _ = fs::remove_file(suffixed(dir, base, ext, suffix));
        }
    }
}

/// Names of the entries of `dir`.
fn list(dir: &Path) -> Result<Vec<String>, StorageError> {
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io("list partition dir", dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io("list partition dir", dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Base offsets of the names that end in `suffix` (`.log`, `.log.swap`), sorted.
fn bases_with(names: &[String], suffix: &str) -> Vec<i64> {
    let mut bases: Vec<i64> = names
        .iter()
        .filter_map(|n| n.strip_suffix(suffix))
        .filter(|stem| stem.len() == 20)
        .filter_map(|stem| stem.parse().ok())
        .collect();
    bases.sort_unstable();
    bases
}

/// Finishes or discards what a crash left of swaps in `dir` (see the module docs); runs
/// before the segments are listed at open.
///
/// # Errors
/// I/O errors listing, reading a swap log's headers, removing, renaming or syncing.
pub(in crate::storage::partition_log) fn finish_interrupted_swaps(
    dir: &Path,
) -> Result<(), StorageError> {
    // The common case, and at a start of many partitions the one that matters: nothing
    // left by a cleaning, found by one listing.
    let names = list(dir)?;
    if !names.iter().any(|n| n.ends_with(CLEANED_SUFFIX) || n.ends_with(SWAP_SUFFIX)) {
        return Ok(());
    }
    for name in names.iter().filter(|n| n.ends_with(CLEANED_SUFFIX)) {
        let _ = fs::remove_file(dir.join(name));
    }
    for base in bases_with(&names, ".log.swap") {
        if !dir.join(segment_file_name(base, "log")).exists() {
            discard_swap(&RealIo, dir, base);
            continue;
        }
        let swap_log = suffixed(dir, base, "log", SWAP_SUFFIX);
        let file = File::open(&swap_log).map_err(|e| StorageError::io("open", &swap_log, e))?;
        let next = next_offset_from_headers(&file, base)
            .map_err(|e| StorageError::io("read batch headers", &swap_log, e))?;
        drop(file);
        let replaced: Vec<i64> =
            bases_with(&list(dir)?, ".log").into_iter().filter(|&b| b > base && b < next).collect();
        for &b in &replaced {
            Segment::remove_files(dir, b)?;
        }
        if !replaced.is_empty() {
            RealIo.sync_dir(dir).map_err(|e| StorageError::io("sync directory", dir, e))?;
        }
        for ext in SWAP_EXTENSIONS {
            let from = suffixed(dir, base, ext, SWAP_SUFFIX);
            if from.exists() {
                let to = dir.join(segment_file_name(base, ext));
                fs::rename(&from, &to).map_err(|e| StorageError::io("rename over", &to, e))?;
            }
        }
        tracing::info!(partition = %dir.display(), base, next_offset = next, replaced = replaced.len() + 1, "finished a cleaned segment's interrupted swap");
    }
    for name in list(dir)? {
        if name.ends_with(SWAP_SUFFIX) {
            // An index's `.swap` without its log's: step 2 was cut short.
            let _ = fs::remove_file(dir.join(&name));
        }
    }
    RealIo.sync_dir(dir).map_err(|e| StorageError::io("sync directory", dir, e))
}
