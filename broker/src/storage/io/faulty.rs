//! [`FaultyIo`]: real I/O that fails the Nth operation of a kind, for tests (the broker's
//! own, and with the `testing` feature the storage crash tests and benchmarks).

use std::fs::File;
use std::io::{self, IoSlice};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::super::sys::{self, MmapRegion};
use super::FileIo;

/// Real I/O that fails reservations from the Nth on (a disk that stays full until
/// [`FaultyIo::heal`]), the Nth write, the Nth data sync, or the Nth file sync, rename or
/// directory sync (counting from 1), for tests.
#[derive(Debug, Default)]
pub struct FaultyIo {
    fail_reserve_at: AtomicU64,
    fail_write_at: AtomicU64,
    fail_sync_at: AtomicU64,
    reserves: AtomicU64,
    writes: AtomicU64,
    syncs: AtomicU64,
    sync_delay_us: AtomicU64,
    file_sync_delay_us: AtomicU64,
    file_syncs: Countdown,
    renames: Countdown,
    dir_syncs: Countdown,
}

/// Calls of one kind so far, and the one that is to fail (0: none).
#[derive(Debug, Default)]
struct Countdown {
    calls: AtomicU64,
    fail_at: AtomicU64,
}

impl Countdown {
    fn fail_nth(&self, n: u64) {
        let now = self.calls.load(Ordering::SeqCst);
        self.fail_at.store(if n == 0 { 0 } else { now + n }, Ordering::SeqCst);
    }

    /// Counts a call; whether it is the one to fail.
    fn fails(&self) -> bool {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        n == self.fail_at.load(Ordering::SeqCst)
    }
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
    /// Makes the `n`th file sync (fsync of a durable file) from now fail with `EIO`.
    pub fn fail_nth_file_sync(&self, n: u64) {
        self.file_syncs.fail_nth(n);
    }
    /// Makes the `n`th rename from now fail with `EIO`.
    pub fn fail_nth_rename(&self, n: u64) {
        self.renames.fail_nth(n);
    }
    /// Makes the `n`th directory sync from now fail with `EIO`.
    pub fn fail_nth_dir_sync(&self, n: u64) {
        self.dir_syncs.fail_nth(n);
    }
    /// Directory syncs started so far.
    pub fn dir_syncs(&self) -> u64 {
        self.dir_syncs.calls.load(Ordering::SeqCst)
    }
    /// File syncs (of durable files) started so far.
    pub fn file_syncs(&self) -> u64 {
        self.file_syncs.calls.load(Ordering::SeqCst)
    }
    /// Makes every file sync (of a durable file) take at least `delay`.
    pub fn slow_file_syncs(&self, delay: std::time::Duration) {
        self.file_sync_delay_us.store(delay.as_micros() as u64, Ordering::SeqCst);
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

    fn sync_file(&self, file: &File) -> io::Result<()> {
        let delay = self.file_sync_delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_micros(delay));
        }
        if self.file_syncs.fails() {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        file.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if self.renames.fails() {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.dir_syncs.fails() {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        File::open(dir)?.sync_all()
    }
}
