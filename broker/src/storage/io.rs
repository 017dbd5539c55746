//! The narrow interface through which the log reserves disk blocks, writes record
//! batches and syncs data.
//!
//! The operations that can fail on the write path are reserving blocks ahead of the write
//! (a full disk fails here, before any byte is written), the write itself, and syncing.
//! Routing them through [`FileIo`] lets tests fail the Nth one and check that the log
//! reports the error, stays readable and never serves a partial batch.

use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicU64, Ordering};

use super::sys::{self, MmapRegion};

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

/// Real I/O that fails reservations from the Nth on (a disk that stays full until
/// [`FaultyIo::heal`]), the Nth write, or the Nth sync (counting from 1), for tests.
#[derive(Debug, Default)]
pub struct FaultyIo {
    fail_reserve_at: AtomicU64,
    fail_write_at: AtomicU64,
    fail_sync_at: AtomicU64,
    reserves: AtomicU64,
    writes: AtomicU64,
    syncs: AtomicU64,
    sync_delay_us: AtomicU64,
}

impl FaultyIo {
    /// A `FaultyIo` that fails nothing until told to.
    pub fn new() -> Self {
        Self::default()
    }
    /// Makes the `n`th reservation from now, and every one after it, fail with `ENOSPC`.
    pub fn fail_reserves_from(&self, n: u64) {
        let now = self.reserves.load(Ordering::SeqCst);
        self.fail_reserve_at.store(if n == 0 { 0 } else { now + n }, Ordering::SeqCst);
    }
    /// Makes the `n`th write from now fail with `EIO` after writing half its bytes.
    pub fn fail_nth_write(&self, n: u64) {
        let now = self.writes.load(Ordering::SeqCst);
        self.fail_write_at.store(if n == 0 { 0 } else { now + n }, Ordering::SeqCst);
    }
    /// Makes the `n`th sync from now fail with `EIO` (0 = never).
    pub fn fail_nth_sync(&self, n: u64) {
        let now = self.syncs.load(Ordering::SeqCst);
        self.fail_sync_at.store(if n == 0 { 0 } else { now + n }, Ordering::SeqCst);
    }
    /// Space is back: reservations succeed again.
    pub fn heal(&self) {
        self.fail_reserve_at.store(0, Ordering::SeqCst);
    }
    /// Reservations made so far.
    pub fn reserves(&self) -> u64 {
        self.reserves.load(Ordering::SeqCst)
    }
    /// Syncs started so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }
    /// Makes every sync take at least `delay`, as a disk does (tmpfs syncs are free).
    pub fn slow_syncs(&self, delay: std::time::Duration) {
        self.sync_delay_us.store(delay.as_micros() as u64, Ordering::SeqCst);
    }
}

impl FileIo for FaultyIo {
    fn reserve(&self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        let n = self.reserves.fetch_add(1, Ordering::SeqCst) + 1;
        let from = self.fail_reserve_at.load(Ordering::SeqCst);
        if from != 0 && n >= from {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        sys::reserve(file, offset, len)
    }

    fn write(&self, file: &File, offset: u64, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_write_at.load(Ordering::SeqCst) {
            // A torn write: the first half of the first buffer reaches the file.
            if let Some(first) = bufs.first() {
                let half = &first[..first.len() / 2];
                sys::pwrite_all(file, offset, &mut [IoSlice::new(half)])?;
            }
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        sys::pwrite_all(file, offset, bufs)
    }

    fn sync(&self, region: &MmapRegion, pos: usize, len: usize) -> io::Result<()> {
        let n = self.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        let delay = self.sync_delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_micros(delay));
        }
        if n == self.fail_sync_at.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        region.sync_range(pos, len)
    }
}
