//! Swapping a cleaned segment in for the old one, and finishing at open what a crash left
//! of a swap.
//!
//! The swap of one segment, as Kafka's `.cleaned` / `.swap` steps:
//! ```text
//! 1. <base>.log.cleaned, .index.cleaned, .timeindex.cleaned written and synced
//! 2. indexes renamed to .swap, then the log to <base>.log.swap; dir synced  <- commit
//! 3. (under the swap lock) indexes renamed over <base>.index / .timeindex, then the log
//!    over <base>.log; dir synced; the segment list points at the new segment
//! ```
//! At open, [`finish_interrupted_swaps`] removes every `.cleaned` file (step 1 is the old
//! set) and completes every `<base>.log.swap` whose `<base>.log` exists (the new set; a
//! swap whose old log is gone belonged to a segment that retention deleted, and goes).
//! Index `.swap` files without a log `.swap` are leftovers of a step 2 cut short. So a
//! crash at any point leaves each segment old or new, whole. Segments are swapped oldest
//! first, so a record is only ever gone when the record that replaced it, later in the
//! log, is there (or was itself a tombstone past its horizon, whose older values went in
//! earlier swaps of the same pass).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use crate::storage::io::{FileIo, RealIo};
use crate::storage::partition_log::{capacities, lock, PartitionLog};
use crate::storage::segment::{Role, Segment};
use crate::storage::{durable, segment_file_name, StorageError};

pub(super) const CLEANED_SUFFIX: &str = ".cleaned";
pub(super) const SWAP_SUFFIX: &str = ".swap";
pub(super) const SEGMENT_EXTENSIONS: [&str; 3] = ["index", "timeindex", "log"];

pub(super) fn suffixed(dir: &Path, base: i64, ext: &str, suffix: &str) -> PathBuf {
    let mut name = segment_file_name(base, ext);
    name.push_str(suffix);
    dir.join(name)
}

impl PartitionLog {
    /// Builds the indexes of `<base>.log.cleaned` beside it, syncs them, and renames the
    /// three files to `.swap`, the log last (the commit point), then syncs the directory.
    pub(super) fn commit_cleaned(
        &self,
        base: i64,
        len: u64,
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
        for ext in ["index", "timeindex"] {
            let p = suffixed(dir, base, ext, CLEANED_SUFFIX);
            let f = File::open(&p).map_err(|e| StorageError::io("open", &p, e))?;
            self.io.sync_file(&f).map_err(|e| StorageError::io("sync", &p, e))?;
        }
        for ext in SEGMENT_EXTENSIONS {
            let from = suffixed(dir, base, ext, CLEANED_SUFFIX);
            let to = suffixed(dir, base, ext, SWAP_SUFFIX);
            self.io.rename(&from, &to).map_err(|e| StorageError::io("rename", &to, e))?;
        }
        self.io.sync_dir(dir).map_err(|e| StorageError::io("sync directory", dir, e))
    }

    /// Step 3 of the swap: the `.swap` files over the segment's, and the new segment into
    /// the list. A segment that retention removed meanwhile keeps its removal.
    pub(super) fn swap_in(
        &self,
        old: &Arc<Segment>,
        config: &crate::storage::LogConfig,
    ) -> Result<(), StorageError> {
        let base = old.base_offset();
        let dir = &self.dir;
        let _swap = lock(&self.swap_lock);
        let present = self.segments().iter().any(|s| Arc::ptr_eq(s, old));
        if !present || lock(&self.writer).closed {
            for ext in SEGMENT_EXTENSIONS {
                let _ = fs::remove_file(suffixed(dir, base, ext, SWAP_SUFFIX));
            }
            return Ok(());
        }
        // The old segment never opens its files again: they are about to be replaced.
        old.retire();
        for ext in SEGMENT_EXTENSIONS {
            let from = suffixed(dir, base, ext, SWAP_SUFFIX);
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
        self.replace_segment(old, Some(new));
        Ok(())
    }

    /// Removes a segment whose every batch was cleaned away: out of the list first, then
    /// its log durably, then its indexes (which an open without the log removes anyway).
    pub(super) fn remove_cleaned_away(&self, old: &Arc<Segment>) -> Result<(), StorageError> {
        let _swap = lock(&self.swap_lock);
        if !self.segments().iter().any(|s| Arc::ptr_eq(s, old)) || lock(&self.writer).closed {
            return Ok(());
        }
        self.replace_segment(old, None);
        tracing::info!(segment = %old.log_path().display(), "removing segment: compaction kept none of its records");
        old.retire();
        durable::remove(self.io.as_ref(), old.log_path())?;
        old.delete_files()
    }

    fn replace_segment(&self, old: &Arc<Segment>, new: Option<Arc<Segment>>) {
        let _writer = lock(&self.writer);
        let mut list: Vec<Arc<Segment>> = self.segments().as_ref().clone();
        if let Some(i) = list.iter().position(|s| Arc::ptr_eq(s, old)) {
            match new {
                Some(n) => list[i] = n,
                None => {
                    list.remove(i);
                }
            }
        }
        *self.segments.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(list);
    }
}

/// Finishes or discards what a crash left of swaps in `dir` (see the module docs); runs
/// before the segments are listed at open.
///
/// # Errors
/// I/O errors listing, renaming or syncing.
pub(in crate::storage::partition_log) fn finish_interrupted_swaps(
    dir: &Path,
) -> Result<(), StorageError> {
    let list = |dir: &Path| -> Result<Vec<String>, StorageError> {
        let entries =
            fs::read_dir(dir).map_err(|e| StorageError::io("list partition dir", dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io("list partition dir", dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    };
    // The common case, and at a start of many partitions the one that matters: nothing
    // left by a cleaning, found by one listing instead of three.
    let names = list(dir)?;
    if !names.iter().any(|n| n.ends_with(CLEANED_SUFFIX) || n.ends_with(SWAP_SUFFIX)) {
        return Ok(());
    }
    let mut changed = false;
    for name in names {
        if name.ends_with(CLEANED_SUFFIX) {
            let _ = fs::remove_file(dir.join(&name));
            changed = true;
        }
    }
    for name in list(dir)? {
        let Some(stem) = name.strip_suffix(".log.swap") else { continue };
        let Ok(base) = stem.parse::<i64>() else { continue };
        changed = true;
        if dir.join(segment_file_name(base, "log")).exists() {
            for ext in SEGMENT_EXTENSIONS {
                let from = suffixed(dir, base, ext, SWAP_SUFFIX);
                if from.exists() {
                    let to = dir.join(segment_file_name(base, ext));
                    fs::rename(&from, &to).map_err(|e| StorageError::io("rename over", &to, e))?;
                }
            }
            tracing::info!(partition = %dir.display(), base, "finished a cleaned segment's interrupted swap");
        } else {
            for ext in SEGMENT_EXTENSIONS {
                let _ = fs::remove_file(suffixed(dir, base, ext, SWAP_SUFFIX));
            }
        }
    }
    for name in list(dir)? {
        if name.ends_with(".index.swap") || name.ends_with(".timeindex.swap") {
            let _ = fs::remove_file(dir.join(&name));
            changed = true;
        }
    }
    if changed {
        RealIo.sync_dir(dir).map_err(|e| StorageError::io("sync directory", dir, e))?;
    }
    Ok(())
}
