//! The one place where the broker touches `unsafe` code and `nix` for the storage engine:
//! memory maps, block reservation, data sync, `sendfile(2)` and `statvfs(3)`; and, as the crate's one
//! unsafe module, the calling thread's CPU priority (see [`lower_thread_priority`]).
//!
//! Everything else in the storage engine sees safe wrappers whose contracts are stated
//! here. The central hazard is SIGBUS: a store into a mapped page that has no disk block
//! behind it kills the process when the disk is full, and a load past the end of a file
//! that was truncated under the mapping does the same. Two rules keep both away: stores
//! (index entries; log data goes in with pwritev) go only into ranges that [`reserve`] has
//! backed with real blocks, and loads stay below a published size that never exceeds the
//! file's length.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};

use memmap2::{MmapOptions, MmapRaw};

/// A shared, writable mapping of a whole file (or of its first `len` bytes).
///
/// Writes go through [`MmapRegion::write_at`], reads through [`MmapRegion::slice`]; the
/// caller keeps the two apart (the single writer stores only past the published size,
/// readers load only below it), so no byte is read while it is written.
#[derive(Debug)]
pub struct MmapRegion {
    map: MmapRaw,
    len: usize,
}

impl MmapRegion {
    /// Maps the first `len` bytes of `file` shared, read-write. The file must be at
    /// least `len` bytes long.
    pub(crate) fn map(file: &File, len: usize) -> io::Result<Self> {
        let map = MmapOptions::new().len(len).map_raw(file)?;
        Ok(MmapRegion { map, len })
    }

    /// Length of the mapping.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Turns off readahead for faults in this mapping (`MADV_RANDOM`), for files
    /// preallocated past their data (an untrimmed index, an active segment) and read a
    /// piece at a time: without it, a fault near the end of the data reads ahead
    /// megabytes of the hole's zero pages, which made a start after a crash with 100,000
    /// partitions take minutes. Best effort.
    pub(crate) fn advise_random(&self) {
        if self.len > 0 {
            let _ = self.map.advise(memmap2::Advice::Random);
        }
    }

    /// Back to the kernel's default readahead after [`Self::advise_random`]. Best effort.
    pub(crate) fn advise_normal(&self) {
        if self.len > 0 {
            let _ = self.map.advise(memmap2::Advice::Normal);
        }
    }

    /// Copies `data` into the mapping at `pos`.
    ///
    /// # Panics
    /// If `pos + data.len()` exceeds the mapping: that is a bug in the caller's bounds.
    ///
    /// The caller must have reserved real blocks for the range (see [`reserve`]) and must
    /// be the only writer; readers must not look at the range until it is published.
    pub(crate) fn write_at(&self, pos: usize, data: &[u8]) {
        let end = pos.checked_add(data.len()).expect("invariant: write range overflows");
        assert!(end <= self.len, "invariant: write past mapping end ({end} > {})", self.len);
        // SAFETY: the range is inside the mapping (checked above). The single writer
        // writes only past the published size, which readers never cross, so no reference
        // to these bytes exists; the blocks were reserved, so the store cannot SIGBUS on a
        // full disk.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.map.as_mut_ptr().add(pos),
                data.len(),
            );
        }
    }

    /// Borrows `len` bytes at `pos`.
    ///
    /// # Panics
    /// If the range exceeds the mapping.
    ///
    /// The caller passes only published ranges: they are never written again while the
    /// mapping lives (the writer appends strictly after them) and lie inside the file.
    pub(crate) fn slice(&self, pos: usize, len: usize) -> &[u8] {
        let end = pos.checked_add(len).expect("invariant: read range overflows");
        assert!(end <= self.len, "invariant: read past mapping end ({end} > {})", self.len);
        // SAFETY: the range is inside the mapping and published: no one writes it while
        // this borrow lives, and it is below the file's length, so loads cannot SIGBUS.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(pos), len) }
    }

    /// Writes the pages in `pos..pos+len` back to disk and waits (msync MS_SYNC).
    pub(crate) fn sync_range(&self, pos: usize, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.map.flush_range(pos, len)
    }
}

// SAFETY: the mapping is plain memory; concurrent access is governed by the publish
// protocol documented on `MmapRegion` (one writer past the published size, readers below).
unsafe impl Sync for MmapRegion {}
// SAFETY: as above; the mapping is not tied to the creating thread.
unsafe impl Send for MmapRegion {}

/// Writes all of `bufs` to `file` at `offset` with pwritev(2), looping over short writes.
///
/// # Errors
/// The first write error; bytes before it may have been written.
pub(crate) fn pwrite_all(
    file: &File,
    mut offset: u64,
    mut bufs: &mut [io::IoSlice<'_>],
) -> io::Result<()> {
    io::IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        let at = i64::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset out of range"))?;
        // IOV_MAX is 1024 on Linux.
        let n = nix::sys::uio::pwritev(file.as_fd(), &bufs[..bufs.len().min(1024)], at)
            .map_err(io::Error::from)?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        offset += n as u64;
        io::IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

/// Backs `offset..offset+len` of `file` with real disk blocks, extending the file to
/// `offset+len` if it is shorter: one call both reserves the blocks and makes the range
/// safe to store into through a mapping (a mapping past the end of a file raises SIGBUS).
///
/// Falls back to writing zeros where the file system has no `fallocate`.
///
/// # Errors
/// `ENOSPC` (and other I/O errors) when the blocks cannot be had.
pub(crate) fn reserve(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use nix::fcntl::{fallocate, FallocateFlags};
    let (Ok(off), Ok(l)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "reservation out of range"));
    };
    match fallocate(file.as_raw_fd(), FallocateFlags::empty(), off, l) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EOPNOTSUPP) => write_zeros(file, offset, len),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Releases the blocks of `offset..offset+len` and makes the range read as zeros, without
/// changing the file's size. Where the file system cannot punch holes, writes zeros.
///
/// # Errors
/// The I/O error.
pub(crate) fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use nix::fcntl::{fallocate, FallocateFlags};
    if len == 0 {
        return Ok(());
    }
    let (Ok(off), Ok(l)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "hole out of range"));
    };
    let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    match fallocate(file.as_raw_fd(), flags, off, l) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EOPNOTSUPP) => write_zeros(file, offset, len),
        Err(e) => Err(io::Error::from(e)),
    }
}

fn write_zeros(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let zeros = [0u8; 64 * 1024];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], offset + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Copies `len` bytes of `file` at `offset` to the socket `out` inside the kernel.
///
/// Returns the bytes sent, which may be fewer than asked (a non-blocking socket that is
/// full answers `WouldBlock`).
///
/// # Errors
/// The `sendfile(2)` error.
pub fn sendfile(out: impl AsFd, file: &File, offset: u64, len: usize) -> io::Result<usize> {
    let mut off = i64::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset out of range"))?;
    nix::sys::sendfile::sendfile64(out, file.as_fd(), Some(&mut off), len).map_err(io::Error::from)
}

/// Size and free space of the file system holding a path, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Its whole size (`f_blocks` × `f_frsize`, Java's `FileStore.getTotalSpace`).
    pub total: u64,
    /// What an unprivileged process may still write (`f_bavail` × `f_frsize`, Java's
    /// `getUsableSpace`): blocks reserved for root do not count.
    pub usable: u64,
}

/// The size and usable space of the file system that holds `path`.
///
/// # Errors
/// The `statvfs(3)` error.
pub fn disk_space(path: &std::path::Path) -> io::Result<DiskSpace> {
    let s = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    #[expect(
        clippy::useless_conversion,
        reason = "c_ulong and fsblkcnt_t are narrower than u64 on some targets"
    )]
    let (block, blocks, available) =
        (u64::from(s.fragment_size()), u64::from(s.blocks()), u64::from(s.blocks_available()));
    Ok(DiskSpace { total: blocks.saturating_mul(block), usable: available.saturating_mul(block) })
}

/// Writes every dirty page and inode of the file system that holds `path` to disk and
/// waits (syncfs(2)): one journal commit for what would be thousands of fsyncs.
///
/// # Errors
/// The open or `syncfs(2)` error; since Linux 5.8 that includes a writeback error of any
/// file on it since the last syncfs.
pub fn sync_file_system(path: &std::path::Path) -> io::Result<()> {
    let dir = File::open(path)?;
    // SAFETY: syncfs(2) takes a descriptor we own for the call's length and touches no
    // memory of ours.
    let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Lowers the calling thread's CPU priority to `nice` (0 normal, 19 lowest): the
/// scheduler then gives its CPU to normal threads first whenever both want it.
///
/// # Errors
/// The `setpriority(2)` error.
pub fn lower_thread_priority(nice: i32) -> io::Result<()> {
    let tid = nix::unistd::gettid().as_raw();
    // SAFETY: setpriority(2) takes plain integers and touches no memory of ours; on Linux
    // PRIO_PROCESS with a thread id changes only that thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The default of `sluice.log.open.segments.max`: half the open-file limit (the rest
/// is for connections and the broker's own files), and no more than a quarter of
/// `vm.max_map_count` (an open segment maps three files; threads and libraries map too).
pub fn default_open_segments() -> usize {
    let files = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(65_530);
    let bound = (files / 2).min(maps / 4).max(16);
    usize::try_from(bound).unwrap_or(usize::MAX)
}

/// The nice value of this process's thread whose `/proc/self/task` directory is `task`.
#[cfg(test)]
pub(crate) fn thread_nice(task: &std::path::Path) -> i32 {
    let stat = std::fs::read_to_string(task.join("stat")).unwrap();
    // Field 19 of stat is the nice value; fields after the command's ')' start at 3.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(16).unwrap().parse().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_can_lower_its_own_priority() {
        std::thread::spawn(|| {
            lower_thread_priority(7).unwrap();
            let tid = nix::unistd::gettid().as_raw();
            let nice = thread_nice(std::path::Path::new(&format!("/proc/self/task/{tid}")));
            assert_eq!(nice, 7);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn disk_space_is_what_df_reports() {
        let dir = tempfile::tempdir().unwrap();
        let space = disk_space(dir.path()).unwrap();
        assert!(space.total > 0 && space.usable <= space.total, "{space:?}");
        // df's 1K-blocks of the same file system: equal to the KiB, up to rounding.
        let out = std::process::Command::new("df").arg("-k").arg(dir.path()).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
        let df_total: u64 = row[1].parse().unwrap();
        assert!(df_total.abs_diff(space.total / 1024) <= 1, "df {df_total} KiB vs {space:?}");
        assert!(disk_space(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn write_then_read_through_the_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("m"))
            .unwrap();
        file.set_len(1 << 20).unwrap();
        reserve(&file, 0, 1 << 16).unwrap();
        let region = MmapRegion::map(&file, 1 << 20).unwrap();
        region.write_at(100, b"sluice");
        assert_eq!(region.slice(100, 6), b"sluice");
        region.sync_range(0, 4096).unwrap();
        let mut buf = [0u8; 6];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, 100).unwrap();
        assert_eq!(&buf, b"sluice");
    }
}
