//! The narrow interface through which the log reserves disk blocks, writes record
//! batches and syncs data.
//!
//! The operations that can fail on the write path are reserving blocks ahead of the write
//! (a full disk fails here, before any byte is written), the write itself, and syncing.
//! Routing them through [`FileIo`] lets tests fail the Nth one and check that the log
//! reports the error, stays readable and never serves a partial batch. The durable small
//! files ([`super::durable`]) go through it too: their file sync, rename and directory
//! sync can be failed the same way.

use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice};
use std::path::Path;

use super::sys::{self, MmapRegion};

#[cfg(any(test, feature = "testing"))]
mod faulty;
#[cfg(any(test, feature = "testing"))]
pub use faulty::FaultyIo;

/// Block reservation and data sync, the fallible steps of an append.
pub trait FileIo: Send + Sync + fmt::Debug {
    /// Backs `offset..offset+len` of `file` with disk blocks (fallocate).
    ///
    /// # Errors
    /// The I/O error, typically `ENOSPC`.
    fn reserve(&self, file: &File, offset: u64, len: u64) -> io::Result<()>;

    /// Writes all of `bufs` at `offset` (pwritev).
    ///
    /// # Errors
    /// The I/O error; a prefix may have been written (past the published size, where no
    /// reader looks and the next append writes again).
    fn write(&self, file: &File, offset: u64, bufs: &mut [IoSlice<'_>]) -> io::Result<()>;

    /// Writes the mapped range back to disk and waits.
    ///
    /// # Errors
    /// The I/O error; the log poisons itself and never retries (the kernel may already
    /// have dropped the dirty pages, so a retry could report success for lost data).
    fn sync(&self, region: &MmapRegion, pos: usize, len: usize) -> io::Result<()>;

    /// Writes a whole file's data and metadata to disk (fsync).
    ///
    /// # Errors
    /// The I/O error.
    fn sync_file(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }

    /// Renames `from` over `to` (atomic on POSIX file systems).
    ///
    /// # Errors
    /// The I/O error; `to` is then unchanged.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    /// Syncs a directory, so that renames and unlinks in it survive a power loss.
    ///
    /// # Errors
    /// The I/O error.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The real thing: fallocate and msync.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealIo;

impl FileIo for RealIo {
    fn reserve(&self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        sys::reserve(file, offset, len)
    }

    fn write(&self, file: &File, offset: u64, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        sys::pwrite_all(file, offset, bufs)
    }

    fn sync(&self, region: &MmapRegion, pos: usize, len: usize) -> io::Result<()> {
        region.sync_range(pos, len)
    }
}

/// Another [`FileIo`]'s reservations, writes and renames, and no sync: for a broker that
/// closes every partition and then syncs the whole file system at once (syncfs(2)), where
/// a sync per file cost four fsyncs a partition (30 s for 100,000).
#[derive(Debug)]
pub struct DeferredSyncIo<'a>(pub &'a dyn FileIo);

impl FileIo for DeferredSyncIo<'_> {
    fn reserve(&self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        self.0.reserve(file, offset, len)
    }

    fn write(&self, file: &File, offset: u64, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        self.0.write(file, offset, bufs)
    }

    fn sync(&self, _region: &MmapRegion, _pos: usize, _len: usize) -> io::Result<()> {
        Ok(())
    }

    fn sync_file(&self, _file: &File) -> io::Result<()> {
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}
