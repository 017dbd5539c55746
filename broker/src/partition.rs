//! A partition as the request handlers see it: the synchronous [`PartitionLog`] behind
//! the one adapter that hands blocking work to tokio's blocking threads, and the list of
//! fetches long-polling it.
//!
//! Appends of more than 64 KiB, and every append that may wait for a sync (durable mode's
//! group commit), run on blocking threads; small page-cache appends run inline. Reads run
//! inline: they are an index binary search and a few header loads from the page cache, and
//! return a file slice without copying.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::storage::{AppendInfo, PartitionLog, ReadInfo, StorageError, ValidRecords};

/// Largest record set appended on the async thread itself.
pub const INLINE_APPEND_BYTES: usize = 64 * 1024;

/// One partition of a topic.
#[derive(Debug)]
pub struct Partition {
    topic: String,
    index: i32,
    log: Arc<PartitionLog>,
    waiters: Mutex<Vec<Arc<Notify>>>,
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(topic: &str, index: i32, log: PartitionLog) -> Self {
        Partition {
            topic: topic.to_owned(),
            index,
            log: Arc::new(log),
            waiters: Mutex::new(Vec::new()),
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
    /// The log, for synchronous calls that are cheap (offsets, config).
    pub fn log(&self) -> &Arc<PartitionLog> {
        &self.log
    }

    /// Appends a record set and wakes the fetches waiting here.
    ///
    /// A small set on a log that never syncs inside an append is written inline: a
    /// pwritev of at most [`INLINE_APPEND_BYTES`] into the page cache takes microseconds,
    /// less than the two thread switches of a hand-off. Larger sets, and every append
    /// that may wait for a sync (`flush.messages`), go to a blocking thread.
    ///
    /// # Errors
    /// The storage error.
    pub async fn append(&self, records: ValidRecords<Bytes>) -> Result<AppendInfo, StorageError> {
        if records.len() <= INLINE_APPEND_BYTES && self.log.config().flush_messages == u64::MAX {
            let result = self.log.append_valid(&records);
            if result.is_ok() {
                self.wake();
            }
            return result;
        }
        let log = Arc::clone(&self.log);
        let result = tokio::task::spawn_blocking(move || log.append_valid(&records))
            .await
            .unwrap_or_else(|e| {
                Err(StorageError::Io {
                    op: "append task",
                    path: self.log.dir().to_owned(),
                    source: std::io::Error::other(e.to_string()),
                })
            });
        if result.is_ok() {
            self.wake();
        }
        result
    }

    /// Appends a record set that the caller built in memory, synchronously (internal
    /// topics; small writes).
    ///
    /// # Errors
    /// The storage error.
    pub fn append_blocking(&self, records: &[u8]) -> Result<AppendInfo, StorageError> {
        let result = self.log.append(records);
        if result.is_ok() {
            self.wake();
        }
        result
    }

    /// Reads whole batches from `offset`; see [`PartitionLog::read`].
    ///
    /// # Errors
    /// The storage error (offset out of range).
    pub fn read(&self, offset: i64, max_bytes: u64) -> Result<ReadInfo, StorageError> {
        self.log.read(offset, max_bytes)
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
