//! The one way the broker writes a small file that must survive a crash or a power loss.
//!
//! [`write`]: a temporary file `<name>.tmp` beside the target, all bytes written, the file
//! synced, renamed over the target, and the directory synced. At every instant the target
//! is the old file whole or the new file whole; a crash leaves at most a stray `.tmp`,
//! which [`remove_stray_temps`] (and the partition open) removes at start and which is
//! never read. A failure before the rename leaves the old file as it was; a failure of
//! the directory sync leaves the new file in place but not known to be durable, and is
//! reported, so callers do not count on it.
//!
//! Every file that must survive a crash goes through here, and each says what a torn or
//! corrupt copy (only possible through damage beyond a crash, as renames are atomic)
//! means when read:
//!
//! | file | owner | unreadable or corrupt |
//! |---|---|---|
//! | `meta.properties` | `broker.rs` | typed error, the broker does not start (a new cluster id would silently make a different cluster) |
//! | `topics.catalog` | `topics.rs` | typed error (starting without topics would look like data loss) |
//! | `producer-id-block` | `producer_ids.rs` | typed error (guessing could hand out an id twice) |
//! | `log-start-offset` | [`super::checkpoint`] | typed error (guessing low would serve deleted records again) |
//! | `recovery-point-offset` | [`super::checkpoint`] | fallback: every segment is recovered |
//! | `<offset>.snapshot` | [`super::producer_state`] | fallback: an older snapshot and a replay of the log |
//! | `<data_dir>/.clean-shutdown` | `topics.rs` | presence only; written after every partition closed cleanly, its removal made durable at start before any append |
//! | `<data_dir>/.recovery-journal` | [`super::RecoveryJournal`] (created here, then grown by synced appends) | typed error (guessing which partitions need recovery could serve a torn batch); a torn last line names at most one partition more to recover |
//! | `<partition>/.clean-shutdown` | [`super::PartitionLog`] opened on its own (and read from data directories of older brokers) | presence only; its removal is made durable before the first append |

use std::fs::{self, File};
use std::io::IoSlice;
use std::path::{Path, PathBuf};

use super::io::FileIo;
use super::StorageError;

/// Suffix of the temporary file beside a durable file while it is written.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Where [`write`] puts the new contents of `path` before the rename.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(TEMP_SUFFIX);
    path.with_file_name(name)
}

/// Replaces `path` with `bytes` durably (see the module docs).
///
/// # Errors
/// [`StorageError::Io`] naming the step that failed; before the rename the old file is
/// untouched and the temporary file is removed.
pub fn write(io: &dyn FileIo, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = parent(path);
    let tmp = temp_path(path);
    let staged = (|| {
        let file = File::create(&tmp).map_err(|e| StorageError::io("create", &tmp, e))?;
        io.write(&file, 0, &mut [IoSlice::new(bytes)])
            .map_err(|e| StorageError::io("write", &tmp, e))?;
        io.sync_file(&file).map_err(|e| StorageError::io("sync", &tmp, e))?;
        io.rename(&tmp, path).map_err(|e| StorageError::io("rename over", path, e))
    })();
    if let Err(e) = staged {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    io.sync_dir(dir).map_err(|e| StorageError::io("sync directory", dir, e))
}

/// Removes `path` durably (unlink, then a sync of its directory). Absent is fine, and
/// the directory is synced then too: an earlier unlink may not have been.
///
/// # Errors
/// [`StorageError::Io`] from the unlink or the directory sync.
pub fn remove(io: &dyn FileIo, path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io("remove", path, e)),
    }
    let dir = parent(path);
    io.sync_dir(dir).map_err(|e| StorageError::io("sync directory", dir, e))
}

/// Removes the regular files in `dir` whose names end in [`TEMP_SUFFIX`]: what a crash
/// during [`write`] leaves. Returns how many went.
pub fn remove_stray_temps(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let is_temp = entry.file_name().to_str().is_some_and(|n| n.ends_with(TEMP_SUFFIX));
        if is_temp && entry.file_type().is_ok_and(|t| t.is_file()) {
            tracing::info!(file = %entry.path().display(), "removing a temporary file left by a crash");
            if fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::io::{FaultyIo, RealIo};

    fn setup() -> (tempfile::TempDir, PathBuf, FaultyIo) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        write(&RealIo, &path, b"old contents\n").unwrap();
        (dir, path, FaultyIo::new())
    }

    fn assert_old_intact(path: &Path) {
        assert_eq!(fs::read(path).unwrap(), b"old contents\n");
        assert!(!temp_path(path).exists(), "the temporary file is cleaned up");
    }

    #[test]
    fn a_write_replaces_the_file_and_syncs_its_directory() {
        let (_dir, path, io) = setup();
        write(&io, &path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(io.dir_syncs(), 1);
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_intact() {
        let (_dir, path, io) = setup();
        io.fail_nth_write(1);
        let e = write(&io, &path, b"new contents, longer than the old").unwrap_err();
        assert!(e.to_string().starts_with("write "), "{e}");
        assert_old_intact(&path);
    }

    #[test]
    fn a_failed_file_sync_leaves_the_old_file_intact() {
        let (_dir, path, io) = setup();
        io.fail_nth_file_sync(1);
        let e = write(&io, &path, b"new").unwrap_err();
        assert!(e.to_string().starts_with("sync "), "{e}");
        assert_old_intact(&path);
    }

    #[test]
    fn a_failed_rename_leaves_the_old_file_intact() {
        let (_dir, path, io) = setup();
        io.fail_nth_rename(1);
        let e = write(&io, &path, b"new").unwrap_err();
        assert!(e.to_string().starts_with("rename over "), "{e}");
        assert_old_intact(&path);
        // The next write goes through.
        write(&io, &path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn a_failed_directory_sync_is_reported() {
        let (_dir, path, io) = setup();
        io.fail_nth_dir_sync(1);
        let e = write(&io, &path, b"new").unwrap_err();
        assert!(e.to_string().starts_with("sync directory "), "{e}");
    }

    #[test]
    fn stray_temporary_files_are_removed_and_directories_kept() {
        let (dir, path, _io) = setup();
        fs::write(temp_path(&path), b"torn").unwrap();
        fs::create_dir(dir.path().join("topic.tmp")).unwrap();
        assert_eq!(remove_stray_temps(dir.path()), 1);
        assert!(dir.path().join("topic.tmp").is_dir());
        assert_old_intact(&path);
    }

    #[test]
    fn remove_is_durable_and_absent_is_fine() {
        let (_dir, path, io) = setup();
        remove(&io, &path).unwrap();
        assert!(!path.exists());
        assert_eq!(io.dir_syncs(), 1);
        remove(&io, &path).unwrap();
        assert_eq!(io.dir_syncs(), 2);
    }
}
