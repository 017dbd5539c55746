//! Opening and closing the partitions of every topic: the start (which partitions a crash
//! left to recover, and the lazy openers of the rest), new partitions, and the shutdown.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio_util::task::TaskTracker;

use super::{
    catalog, partition_dir_name, Catalog, EffectiveConfig, Topic, TopicDefaults, TopicError, Topics,
};
use crate::partition::{LogOpener, Partition};
use crate::storage::io::RealIo;
use crate::storage::{
    durable, CleanShutdown, LogConfig, PartitionLog, RecoveryJournal, SegmentHandles, StorageError,
    CLEAN_SHUTDOWN_MARKER,
};
use crate::topic_config::{effective, retain_valid};

impl Topics {
    /// Loads the catalog. The partitions a crash left to recover (those the recovery
    /// journal names, or every one for a data directory without a journal) are opened and
    /// recovered, in parallel, before the broker serves, as in Kafka; every other one
    /// opens on first use (a partition that cannot be opened then answers that use with
    /// its storage error).
    ///
    /// # Errors
    /// An unreadable or corrupt catalog or journal, or a partition to recover that cannot
    /// be opened.
    pub fn load(data_dir: &Path, defaults: TopicDefaults) -> Result<Self, TopicError> {
        fs::create_dir_all(data_dir)
            .map_err(|e| StorageError::io("create data dir", data_dir, e))?;
        remove_deleted_dirs(data_dir);
        let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
        let to_recover =
            if marker.exists() { Some(HashSet::new()) } else { RecoveryJournal::read(data_dir)? };
        let recover = |dir_name: &str| to_recover.as_ref().is_none_or(|n| n.contains(dir_name));
        let mut listed = Vec::new();
        for (name, id, count, overrides) in catalog::read(data_dir)? {
            let overrides = retain_valid(&name, overrides);
            let config = effective(&defaults, &overrides)?;
            let log = defaults.storage_log(&config);
            listed.push((name, id, count, overrides, config, log));
        }
        let recovering: Vec<(usize, i32)> = listed
            .iter()
            .enumerate()
            .flat_map(|(t, (name, _, count, _, _, _))| {
                (0..*count).filter(|&i| recover(&partition_dir_name(name, i))).map(move |i| (t, i))
            })
            .collect();
        // Until the next clean shutdown: a crash before the recovery's writes are on disk
        // leaves these to recover again.
        let names: Vec<String> =
            recovering.iter().map(|&(t, i)| partition_dir_name(&listed[t].0, i)).collect();
        let journal =
            Arc::new(RecoveryJournal::create(data_dir, names.iter().map(String::as_str))?);
        let topics = Topics {
            data_dir: data_dir.to_owned(),
            segment_handles: SegmentHandles::new(defaults.open_segments_max),
            defaults,
            catalog: RwLock::new(Catalog::default()),
            change: Mutex::new(()),
            catalog_writes: AtomicU64::new(0),
            journal,
            syncs: TaskTracker::new(),
            schedule: Arc::default(),
        };
        // One parallel pass over every topic: many small topics recover as fast as a few
        // large ones.
        let mut recovered = in_parallel(recovering, |(t, i)| {
            let (name, _, _, _, _, log) = &listed[t];
            topics.open_partition(name, i, log.clone(), NOT_CLEAN)
        })
        .into_iter();
        // In order: the recovered partitions come as `recovering` listed them.
        for (name, id, count, overrides, config, log) in listed {
            let mut partitions = Vec::with_capacity(count.max(0) as usize);
            for i in 0..count {
                if recover(&partition_dir_name(&name, i)) {
                    partitions.push(recovered.next().expect("invariant: one result each")?);
                    continue;
                }
                let opener =
                    LogOpener { config: log.clone(), handles: Arc::clone(&topics.segment_handles) };
                let dir = topics.partition_dir(&name, i);
                let lazy = Partition::lazy(&name, i, dir, opener)
                    .journaled_in(&topics.journal, false)
                    .tracked_by(&topics.syncs)
                    .scheduled_in(&topics.schedule);
                partitions.push(Arc::new(lazy));
            }
            topics.insert(Arc::new(Topic { name, id, partitions, overrides, config }));
        }
        // Before the first append: from here a crash must not look like a clean close.
        durable::remove(&RealIo, &marker)?;
        Ok(topics)
    }

    /// Opens (creating or recovering it as needed) partition `index` of `topic`.
    pub(super) fn open_partition(
        &self,
        topic: &str,
        index: i32,
        log: LogConfig,
        clean_shutdown: CleanShutdown,
    ) -> Result<Arc<Partition>, StorageError> {
        let dir = self.partition_dir(topic, index);
        let handles = Arc::clone(&self.segment_handles);
        let opened =
            PartitionLog::open_shared(&dir, log, Arc::new(RealIo), handles, clean_shutdown)?;
        // Named in the journal already: recovered at start, or new and named before this.
        let partition = Partition::new(topic, index, opened)
            .journaled_in(&self.journal, true)
            .tracked_by(&self.syncs)
            .scheduled_in(&self.schedule);
        Ok(Arc::new(partition))
    }

    pub(super) fn open_partitions(
        &self,
        name: &str,
        from: i32,
        to: i32,
        config: &EffectiveConfig,
        clean_shutdown: CleanShutdown,
    ) -> Result<Vec<Arc<Partition>>, TopicError> {
        let log = self.defaults.storage_log(config);
        // A crash part way through creating them leaves them to recover.
        let names: Vec<String> = (from..to).map(|i| partition_dir_name(name, i)).collect();
        self.journal.add(names.iter().map(String::as_str))?;
        let results = in_parallel((from..to).collect(), |i| {
            let dir = self.partition_dir(name, i);
            let existed = dir.exists();
            (self.open_partition(name, i, log.clone(), clean_shutdown), existed, dir)
        });
        let mut opened = Vec::with_capacity(results.len());
        let mut failure = None;
        for (result, existed, dir) in results {
            match result {
                Ok(p) => opened.push((p, existed)),
                Err(e) => {
                    if !existed {
                        let _ = fs::remove_dir_all(&dir);
                    }
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            // Out of file descriptors or maps, say, part way through a large topic:
            // leave no directories behind that no catalog entry names.
            let mut new = vec![];
            for (p, existed_before) in opened {
                if existed_before {
                    let _ = p.close_unsynced();
                } else {
                    new.push(p);
                }
            }
            discard(new);
            return Err(e.into());
        }
        Ok(opened.into_iter().map(|(p, _)| p).collect())
    }

    /// Renames away the directories a new topic's partitions would open that no topic owns:
    /// a crash between a deletion's catalog write and the removal of its directories leaves
    /// them behind, and the new topic would otherwise serve (or hide behind the old log
    /// start offset) the deleted topic's records. They are kept, as `<dir>.orphaned-<ms>`,
    /// for the operator to look at, not removed.
    pub(super) fn set_aside_leftovers(
        &self,
        name: &str,
        from: i32,
        to: i32,
    ) -> Result<(), TopicError> {
        for i in from..to {
            let dir = self.partition_dir(name, i);
            // Only a directory: anything else in the way fails the open, as it should.
            if !dir.is_dir() {
                continue;
            }
            let aside =
                dir.with_file_name(format!("{name}-{i}.orphaned-{}", crate::storage::now_ms()));
            fs::rename(&dir, &aside)
                .map_err(|e| StorageError::io("set aside leftover", &dir, e))?;
            tracing::warn!(dir = %dir.display(), kept_as = %aside.display(), "a new topic found a leftover partition directory; set it aside");
        }
        Ok(())
    }

    /// Closes every partition cleanly (graceful shutdown), then, if every close succeeded,
    /// syncs the file system once and writes the data directory's clean-shutdown marker:
    /// the next start recovers nothing.
    pub fn close_all(&self) {
        let all: Vec<Arc<Partition>> =
            self.list().iter().flat_map(|t| t.partitions.iter().cloned()).collect();
        let closed = in_parallel(all, |p| match p.close_unsynced() {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(partition = %p.dir().display(), error = %e, "clean close failed");
                false
            }
        });
        if !closed.iter().all(|&ok| ok) {
            tracing::warn!(
                "not every partition closed cleanly: the next start recovers those written to"
            );
            return;
        }
        // One sync of everything the closes wrote, where a sync of each file cost four
        // fsyncs a partition: before the marker, which promises it all.
        if let Err(e) = crate::storage::sync_file_system(&self.data_dir) {
            tracing::error!(error = %e, "cannot sync the data directory's file system: the next start recovers the partitions written to");
            return;
        }
        if let Err(e) = durable::write(&RealIo, &self.data_dir.join(CLEAN_SHUTDOWN_MARKER), b"") {
            tracing::error!(error = %e, "cannot write the clean-shutdown marker");
            return;
        }
        // After the marker: the next start trusts the marker over anything left here.
        if let Err(e) = RecoveryJournal::remove(&self.data_dir) {
            tracing::warn!(error = %e, "cannot remove the recovery journal");
        }
    }
}

/// Removes the directories of new partitions that no catalog entry names. They are
/// dropped first, unclosed (nothing in them is worth a clean-shutdown marker): when
/// descriptors ran out, theirs are the ones the removal needs.
pub(super) fn discard(partitions: Vec<Arc<Partition>>) {
    let dirs: Vec<PathBuf> = partitions.iter().map(|p| p.dir().to_owned()).collect();
    drop(partitions);
    for dir in dirs {
        if let Err(e) = fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove a partition of a failed change");
        }
    }
}

fn remove_deleted_dirs(data_dir: &Path) {
    let Ok(entries) = fs::read_dir(data_dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_str().is_some_and(|n| n.ends_with("-delete")) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Threads that open or close partitions at once: the work waits on syncs and page
/// faults more than on the CPU, so more threads than cores shorten it.
const PARTITION_IO_THREADS: usize = 8;

/// Partitions opened at a start after a crash, or created or added while the broker
/// runs: a directory left behind by a crash is recovered.
pub(super) const NOT_CLEAN: CleanShutdown = CleanShutdown::DataDir { clean: false };

/// `f` of every item, in order, spread over up to [`PARTITION_IO_THREADS`] threads.
fn in_parallel<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = PARTITION_IO_THREADS.min(items.len());
    if threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let n = items.len();
    let mut slots: Vec<Option<R>> = (0..n).map(|_| None).collect();
    let queue = Mutex::new(items.into_iter().enumerate());
    let done = Mutex::new(&mut slots);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
                let Some((i, item)) = next else { break };
                let r = f(item);
                done.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(r);
            });
        }
    });
    slots.into_iter().map(|r| r.expect("invariant: every item ran")).collect()
}
