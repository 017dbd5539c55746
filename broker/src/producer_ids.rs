//! Producer id allocation for InitProducerId.
//!
//! Ids are handed out from blocks of [`BLOCK`]; the end of the current block is written
//! durably (through [`crate::storage::durable`]: synced, renamed, directory synced) to
//! `<data_dir>/producer-id-block` before any id from it is used, so after a restart,
//! clean or not, allocation starts past every id ever handed out.
//!
//! ```text
//! producer-id-block   v1 <block end> <crc32 of the end as 8 big-endian bytes, hex>\n
//! ```
//! (Older brokers wrote `<block end>\n`; that is read too, only whole, newline included.)
//! A torn or corrupt file is an error: guessing could hand out an id twice.

use std::path::Path;
use std::sync::Mutex;

use crate::storage::checkpoint::{self, OffsetCheckpoint};
use crate::storage::io::RealIo;
use crate::storage::StorageError;

const BLOCK: i64 = 1000;
const FILE: &str = "producer-id-block";

/// The broker's producer id allocator.
#[derive(Debug)]
pub struct ProducerIds {
    block_end: OffsetCheckpoint,
    /// (next id, end of the reserved block).
    state: Mutex<(i64, i64)>,
}

impl ProducerIds {
    /// Loads the allocator from `data_dir`.
    ///
    /// # Errors
    /// An unreadable, torn or corrupt block file.
    pub fn load(data_dir: &Path) -> Result<Self, StorageError> {
        let end = match checkpoint::read(data_dir, FILE) {
            Ok(end) => end.unwrap_or(0),
            Err(e @ StorageError::Corrupt { .. }) => legacy(data_dir).ok_or(e)?,
            Err(e) => return Err(e),
        };
        Ok(ProducerIds {
            block_end: OffsetCheckpoint::new(data_dir, FILE, end),
            state: Mutex::new((end, end)),
        })
    }

    /// A producer id never handed out before.
    ///
    /// # Errors
    /// Writing the next block's end failed (no id is handed out then).
    pub fn next(&self) -> Result<i64, StorageError> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.0 >= state.1 {
            let end = state.1 + BLOCK;
            self.block_end.advance(&RealIo, end)?;
            state.1 = end;
        }
        let id = state.0;
        state.0 += 1;
        Ok(id)
    }
}

/// The block end in the format of older brokers: digits and a newline, nothing else.
fn legacy(data_dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(data_dir.join(FILE)).ok()?;
    let digits = text.strip_suffix('\n')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_repeat_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = ProducerIds::load(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| a.next().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(a);
        let b = ProducerIds::load(dir.path()).unwrap();
        assert!(b.next().unwrap() >= BLOCK, "a restart skips the rest of the block");
    }

    #[test]
    fn a_cut_block_file_is_refused_and_the_old_format_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let a = ProducerIds::load(dir.path()).unwrap();
        for _ in 0..=BLOCK * 12 {
            a.next().unwrap();
        }
        let path = dir.path().join(FILE);
        let whole = std::fs::read(&path).unwrap();
        for cut in 0..whole.len() - 1 {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert!(ProducerIds::load(dir.path()).is_err(), "cut at {cut} was accepted");
        }
        std::fs::write(&path, b"13000\n").unwrap();
        assert_eq!(ProducerIds::load(dir.path()).unwrap().next().unwrap(), 13_000);
        std::fs::write(&path, b"130").unwrap();
        assert!(ProducerIds::load(dir.path()).is_err(), "a cut old-format file");
    }
}
