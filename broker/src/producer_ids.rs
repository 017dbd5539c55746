//! Producer id allocation for InitProducerId.
//!
//! Ids are handed out from blocks of [`BLOCK`]; the end of the current block is written to
//! `<data_dir>/producer-id-block` (fsynced) before any id from it is used, so after a
//! restart, clean or not, allocation starts past every id ever handed out.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const BLOCK: i64 = 1000;
const FILE: &str = "producer-id-block";

/// The broker's producer id allocator.
#[derive(Debug)]
pub struct ProducerIds {
    path: PathBuf,
    /// (next id, end of the reserved block).
    state: Mutex<(i64, i64)>,
}

impl ProducerIds {
    /// Loads the allocator from `data_dir`.
    ///
    /// # Errors
    /// An unreadable or corrupt block file.
    pub fn load(data_dir: &Path) -> std::io::Result<Self> {
        let path = data_dir.join(FILE);
        let end = match fs::read_to_string(&path) {
            Ok(t) => t.trim().parse::<i64>().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a number", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIds { path, state: Mutex::new((end, end)) })
    }

    /// A producer id never handed out before.
    ///
    /// # Errors
    /// Writing the next block's end failed (no id is handed out then).
    pub fn next(&self) -> std::io::Result<i64> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.0 >= state.1 {
            let end = state.1 + BLOCK;
            let tmp = self.path.with_extension("tmp");
            let f = fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut &f, format!("{end}\n").as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            state.1 = end;
        }
        let id = state.0;
        state.0 += 1;
        Ok(id)
    }
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
}
