//! The topic catalog file, written whole by [`durable::write`] at each change:
//!
//! ```text
//! topics.catalog   sluice-topics v1
//!                  <name> TAB <topic id> TAB <partitions> TAB <key=value&key=value> (%-escaped)
//!                  crc <crc32 of the lines above, hex>
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use uuid::Uuid;

use super::{Topic, TopicError};
use crate::storage::io::RealIo;
use crate::storage::{durable, StorageError};

/// The catalog's file name in the data directory.
pub(super) const CATALOG: &str = "topics.catalog";
/// The catalog's first line: its format and version.
pub(super) const HEADER: &str = "sluice-topics v1";

/// Writes the catalog of `topics`, durably.
pub(super) fn write(data_dir: &Path, topics: &[Arc<Topic>]) -> Result<(), TopicError> {
    let mut body = String::new();
    body.push_str(HEADER);
    body.push('\n');
    for t in topics {
        let cfg: Vec<String> =
            t.overrides.iter().map(|(k, v)| format!("{}={}", escape(k), escape(v))).collect();
        let _ = writeln!(body, "{}\t{}\t{}\t{}", t.name, t.id, t.partitions.len(), cfg.join("&"));
    }
    let crc = crc32fast::hash(body.as_bytes());
    let _ = writeln!(body, "crc {crc:08x}");
    durable::write(&RealIo, &data_dir.join(CATALOG), body.as_bytes()).map_err(TopicError::Storage)
}

/// The error of a catalog write that failed, for each topic it would have named.
pub(super) fn write_error(message: &str) -> TopicError {
    let source = std::io::Error::other(message.to_owned());
    TopicError::Storage(StorageError::io("write topic catalog", Path::new(CATALOG), source))
}

/// A topic as the catalog records it: name, id, partition count, overrides.
pub(super) type CatalogEntry = (String, Uuid, i32, BTreeMap<String, String>);

/// Reads the catalog; none yet is an empty one.
pub(super) fn read(data_dir: &Path) -> Result<Vec<CatalogEntry>, TopicError> {
    let path = data_dir.join(CATALOG);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(StorageError::io("read topic catalog", &path, e).into()),
    };
    let corrupt = |reason: String| -> TopicError {
        StorageError::Corrupt { path: path.clone(), reason }.into()
    };
    let Some(crc_at) = text.rfind("crc ") else { return Err(corrupt("no crc line".into())) };
    let (body, crc_line) = text.split_at(crc_at);
    let stored = crc_line.trim().trim_start_matches("crc ");
    if format!("{:08x}", crc32fast::hash(body.as_bytes())) != stored {
        return Err(corrupt("crc does not match".into()));
    }
    let mut lines = body.lines();
    if lines.next() != Some(HEADER) {
        return Err(corrupt("unknown catalog version".into()));
    }
    let mut out = vec![];
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let [name, id, count, cfg] = f[..] else {
            return Err(corrupt(format!("bad line {line:?}")));
        };
        let id = Uuid::parse_str(id).map_err(|_| corrupt(format!("bad topic id {id:?}")))?;
        let count = count.parse().map_err(|_| corrupt(format!("bad partition count {count:?}")))?;
        let mut overrides = BTreeMap::new();
        for kv in cfg.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| corrupt(format!("bad config {kv:?}")))?;
            overrides.insert(unescape(k), unescape(v));
        }
        out.push((name.to_string(), id, count, overrides));
    }
    Ok(out)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b',') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        for s in ["plain", "a=b&c%d", "tab\there", "ünïcode"] {
            assert_eq!(unescape(&escape(s)), s);
        }
    }
}
