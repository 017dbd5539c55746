//! A partition's offset checkpoints ([`LOG_START_CHECKPOINT`],
//! [`RECOVERY_POINT_CHECKPOINT`], [`CLEANER_CHECKPOINT`]): one offset in a small
//! crc-checked file, written through [`super::durable`].
//!
//! ```text
//! v1 <offset, decimal> <crc32 of the offset as 8 big-endian bytes, 8 hex digits>\n
//! ```
//!
//! [`OffsetCheckpoint::advance`] is monotonic and runs outside the partition's writer lock:
//! a writer holding an older value never overwrites a newer one, and callers that arrive
//! while a write runs wait for it and share the next (group commit), so a client asking
//! again and again costs at most one write in flight and never delays appends. When
//! `advance(x)` returns `Ok`, the file holds `x` or more, durably. After
//! [`OffsetCheckpoint::retire`] (the partition was deleted) nothing is written: a write
//! still on its way would otherwise land in a new topic's directory of the same name.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use super::io::FileIo;
use super::{durable, StorageError};

/// The first offset still in the log: every later open starts at or past it (Kafka's
/// `log-start-offset-checkpoint`, per partition).
pub(crate) const LOG_START_CHECKPOINT: &str = "log-start-offset";
/// Offset below which every segment is known to be on disk; after a crash the segments
/// past it are recovered (Kafka's `recovery-point-offset-checkpoint`, per partition).
pub(crate) const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset";
/// Offset up to which the log was cleaned: the start of its dirty section.
pub(crate) const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// One offset checkpoint file of a partition.
#[derive(Debug)]
pub(crate) struct OffsetCheckpoint {
    path: PathBuf,
    state: Mutex<State>,
    written: Condvar,
}

#[derive(Debug)]
struct State {
    /// The value the file durably holds (as far as this process knows).
    durable: i64,
    /// The largest value asked for.
    wanted: i64,
    running: bool,
    /// The partition is gone: no more writes.
    retired: bool,
}

impl OffsetCheckpoint {
    /// A checkpoint at `dir/name` whose file is known to hold `durable` (`i64::MIN`: none).
    pub(crate) fn new(dir: &Path, name: &str, durable: i64) -> Self {
        OffsetCheckpoint {
            path: dir.join(name),
            state: Mutex::new(State { durable, wanted: durable, running: false, retired: false }),
            written: Condvar::new(),
        }
    }

    /// The value last made durable.
    pub(crate) fn durable(&self) -> i64 {
        lock(&self.state).durable
    }

    /// Makes the file hold `offset` or more, durably; a no-op when it already does.
    ///
    /// # Errors
    /// The write's error, to the caller that ran it (a caller that waited for it tries
    /// again itself); [`StorageError::Closed`] once retired.
    pub(crate) fn advance(&self, io: &dyn FileIo, offset: i64) -> Result<(), StorageError> {
        let mut state = lock(&self.state);
        state.wanted = state.wanted.max(offset);
        loop {
            if state.retired {
                let path = self.path.parent().map(Path::to_owned).unwrap_or_default();
                return Err(StorageError::Closed { path });
            }
            if state.durable >= offset {
                return Ok(());
            }
            if state.running {
                state = self.written.wait(state).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.running = true;
            let target = state.wanted.max(offset);
            drop(state);
            let result = durable::write(io, &self.path, format(target).as_bytes());
            state = lock(&self.state);
            state.running = false;
            self.written.notify_all();
            match result {
                Ok(()) => state.durable = state.durable.max(target),
                Err(e) => {
                    // A failed value is not written later on another caller's behalf:
                    // its caller was told it failed.
                    state.wanted = state.durable;
                    return Err(e);
                }
            }
        }
    }

    /// Writes nothing more, once a write in flight is done: the partition was deleted.
    pub(crate) fn retire(&self) {
        let mut state = lock(&self.state);
        while state.running {
            state = self.written.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.retired = true;
    }

    /// Overwrites the file with `offset` even when it is lower than the file's value (at
    /// open, when recovery cut the log below it).
    ///
    /// # Errors
    /// The write's error.
    pub(crate) fn reset(&self, io: &dyn FileIo, offset: i64) -> Result<(), StorageError> {
        let mut state = lock(&self.state);
        durable::write(io, &self.path, format(offset).as_bytes())?;
        state.durable = offset;
        state.wanted = offset;
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn format(offset: i64) -> String {
    format!("v1 {offset} {:08x}\n", crc32fast::hash(&offset.to_be_bytes()))
}

/// Reads a checkpoint file; `None` when there is none.
///
/// # Errors
/// [`StorageError::Corrupt`] for a file that is not a whole checkpoint; read errors.
pub(crate) fn read(dir: &Path, name: &str) -> Result<Option<i64>, StorageError> {
    let path = dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io("read checkpoint", &path, e)),
    };
    let corrupt =
        |reason: &str| StorageError::Corrupt { path: path.clone(), reason: reason.into() };
    let mut parts = text.split_whitespace();
    let (Some("v1"), Some(offset), Some(crc)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt("checkpoint is not `v1 <offset> <crc>`"));
    };
    let offset: i64 = offset.parse().map_err(|_| corrupt("checkpoint offset is not a number"))?;
    if format!("{:08x}", crc32fast::hash(&offset.to_be_bytes())) != crc {
        return Err(corrupt("checkpoint crc does not match"));
    }
    Ok(Some(offset))
}

/// The recovery point, or `i64::MIN` (recover everything) when there is none or it cannot
/// be read, as Kafka resets an unreadable recovery point checkpoint to 0.
pub(crate) fn read_recovery_point(dir: &Path) -> i64 {
    match read(dir, RECOVERY_POINT_CHECKPOINT) {
        Ok(Some(offset)) => offset,
        Ok(None) => i64::MIN,
        Err(e) => {
            tracing::warn!(partition = %dir.display(), error = %e, "unreadable recovery point: recovering every segment");
            i64::MIN
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::io::{FaultyIo, RealIo};

    #[test]
    fn advance_is_monotonic_and_a_failed_write_keeps_the_old_value() {
        let dir = tempfile::tempdir().unwrap();
        let c = OffsetCheckpoint::new(dir.path(), "cp", i64::MIN);
        c.advance(&RealIo, 10).unwrap();
        c.advance(&RealIo, 5).unwrap();
        assert_eq!(read(dir.path(), "cp").unwrap(), Some(10));
        let io = FaultyIo::new();
        io.fail_nth_file_sync(1);
        assert!(c.advance(&io, 20).is_err());
        assert_eq!((read(dir.path(), "cp").unwrap(), c.durable()), (Some(10), 10));
        // The failed 20 is not written on behalf of a later, smaller request.
        c.advance(&io, 15).unwrap();
        assert_eq!(read(dir.path(), "cp").unwrap(), Some(15));
        c.advance(&io, 20).unwrap();
        assert_eq!(read(dir.path(), "cp").unwrap(), Some(20));
        c.reset(&RealIo, 3).unwrap();
        assert_eq!(read(dir.path(), "cp").unwrap(), Some(3));
    }

    #[test]
    fn a_retired_checkpoint_writes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let c = OffsetCheckpoint::new(dir.path(), "cp", i64::MIN);
        c.advance(&RealIo, 10).unwrap();
        c.retire();
        assert!(matches!(c.advance(&RealIo, 20), Err(StorageError::Closed { .. })));
        assert_eq!(read(dir.path(), "cp").unwrap(), Some(10));
    }

    #[test]
    fn concurrent_writers_never_leave_an_older_value() {
        let dir = tempfile::tempdir().unwrap();
        let c = Arc::new(OffsetCheckpoint::new(dir.path(), "cp", i64::MIN));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        c.advance(&RealIo, i * 8 + t).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(read(dir.path(), "cp").unwrap(), Some(49 * 8 + 7));
    }

    #[test]
    fn every_cut_of_a_checkpoint_is_refused_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let whole = format(123_456);
        for cut in 0..whole.len() - 1 {
            std::fs::write(dir.path().join("cp"), &whole[..cut]).unwrap();
            assert!(read(dir.path(), "cp").is_err(), "cut at {cut} read as a checkpoint");
        }
    }
}
