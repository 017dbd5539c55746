//! The producer snapshot file: the state as of an offset, rendered under the writer
//! lock, written durably outside it, and loaded at open (the newest valid one at or below
//! the log end offset; corrupt or newer ones are removed).
//!
//! ```text
//! <offset>.snapshot   sluice-producers v3
//!                     <pid> <epoch> <last append ms, broker clock> <ongoing txn's first offset, or -1> <first_seq>:<last_seq>:<first_offset>:<last_offset> ...
//!                     crc <crc32 of the lines above, hex>
//! ```
//! (v2, read too, had no transaction field; v1 had the batch's max timestamp in the third.)

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use super::entry::{CachedBatch, ProducerEntry, CACHED_BATCHES};
use super::ProducerState;
use crate::storage::io::FileIo;
use crate::storage::{durable, StorageError};

const HEADER: &str = "sluice-producers v3";
const HEADER_V2: &str = "sluice-producers v2";
const HEADER_V1: &str = "sluice-producers v1";

impl ProducerState {
    /// The snapshot file's text (cheap enough to make under the writer lock: one string).
    pub(crate) fn render_snapshot(&self) -> String {
        let mut body = format!("{HEADER}\n");
        // Longest idle first; no sort, as this runs under the writer lock at a roll.
        for (&id, (e, _)) in
            self.by_recency.values().filter_map(|id| self.producers.get_key_value(id))
        {
            let txn = e.current_txn_first_offset.unwrap_or(-1);
            let _ = write!(body, "{id} {} {} {txn}", e.epoch, e.last_append_ms);
            for c in &e.batches {
                let _ = write!(
                    body,
                    " {}:{}:{}:{}",
                    c.first_seq, c.last_seq, c.first_offset, c.last_offset
                );
            }
            body.push('\n');
        }
        let _ = writeln!(body, "crc {:08x}", crc32fast::hash(body.as_bytes()));
        body
    }

    /// Writes `<offset>.snapshot` in `dir` durably; see [`write_snapshot_text`].
    ///
    /// # Errors
    /// As [`durable::write`].
    pub(crate) fn write_snapshot(
        &self,
        io: &dyn FileIo,
        dir: &Path,
        offset: i64,
    ) -> Result<(), StorageError> {
        write_snapshot_text(io, dir, offset, &self.render_snapshot())
    }

    /// Loads the newest valid snapshot at or below `max_offset`: (state, its offset).
    /// Corrupt or newer snapshots are removed (a newer one describes a cut tail).
    pub(crate) fn load_snapshot(
        dir: &Path,
        max_offset: i64,
        max_producers: usize,
    ) -> (ProducerState, i64) {
        for (offset, path) in list_snapshots(dir).into_iter().rev() {
            if offset > max_offset {
                let _ = fs::remove_file(&path);
                continue;
            }
            match fs::read_to_string(&path).ok().and_then(|t| parse(&t, max_producers)) {
                Some(state) => return (state, offset),
                None => {
                    tracing::warn!(snapshot = %path.display(), "ignoring corrupt producer snapshot");
                    let _ = fs::remove_file(&path);
                }
            }
        }
        (ProducerState::default(), 0)
    }
}

/// Writes rendered snapshot text as `<offset>.snapshot` in `dir` durably and removes
/// snapshots older than the previous one. Runs outside the writer lock: snapshots have
/// distinct names, so two of them written at once do not overwrite each other.
///
/// # Errors
/// As [`durable::write`].
pub(crate) fn write_snapshot_text(
    io: &dyn FileIo,
    dir: &Path,
    offset: i64,
    text: &str,
) -> Result<(), StorageError> {
    durable::write(io, &snapshot_path(dir, offset), text.as_bytes())?;
    let snapshots = list_snapshots(dir);
    if snapshots.len() > 2 {
        for (_, old) in &snapshots[..snapshots.len() - 2] {
            let _ = fs::remove_file(old);
        }
    }
    Ok(())
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(crate::storage::segment_file_name(offset, "snapshot"))
}

fn list_snapshots(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut out: Vec<(i64, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".snapshot")?;
            Some((stem.parse().ok()?, e.path()))
        })
        .collect();
    out.sort_unstable();
    out
}

fn parse(text: &str, max_producers: usize) -> Option<ProducerState> {
    let crc_at = text.rfind("crc ")?;
    let (body, crc) = text.split_at(crc_at);
    if format!("{:08x}", crc32fast::hash(body.as_bytes())) != crc.trim().trim_start_matches("crc ")
    {
        return None;
    }
    let mut lines = body.lines();
    let header = lines.next()?;
    if header != HEADER && header != HEADER_V2 && header != HEADER_V1 {
        return None;
    }
    let has_txn = header == HEADER;
    let mut entries = Vec::new();
    for line in lines {
        let mut f = line.split(' ');
        let id: i64 = f.next()?.parse().ok()?;
        let epoch: i16 = f.next()?.parse().ok()?;
        let last_append_ms: i64 = f.next()?.parse().ok()?;
        let current_txn_first_offset = if has_txn {
            let first: i64 = f.next()?.parse().ok()?;
            (first >= 0).then_some(first)
        } else {
            None
        };
        let mut batches = VecDeque::new();
        for c in f {
            let mut n = c.split(':').map(|x| x.parse::<i64>().ok());
            let (Some(first_seq), Some(last_seq), Some(first_offset), Some(last_offset), None) =
                (n.next()?, n.next()?, n.next()?, n.next()?, n.next())
            else {
                return None;
            };
            batches.push_back(CachedBatch {
                first_seq: i32::try_from(first_seq).ok()?,
                last_seq: i32::try_from(last_seq).ok()?,
                first_offset,
                last_offset,
            });
        }
        if batches.len() > CACHED_BATCHES {
            return None;
        }
        entries
            .push((id, ProducerEntry { epoch, last_append_ms, batches, current_txn_first_offset }));
    }
    // Recency order from the append times; a bound lowered since is applied here.
    entries.sort_by_key(|(id, e)| (e.last_append_ms, *id));
    let mut state = ProducerState::default();
    for (id, entry) in entries {
        state.put(id, entry, max_producers);
    }
    Some(state)
}
