//! Rebuilding a partition's producer state at open: the newest snapshot, then the batch
//! headers and transaction markers of the log after it.

use std::path::Path;
use std::sync::Arc;

use sluice_protocol::record::{ControlType, RecordBatch};

use super::entry::IdempotentBatch;
use super::ProducerState;
use crate::storage::segment::Segment;
use crate::storage::txn_index::AbortedTxn;
use crate::storage::StorageError;

/// The producer state rebuilt at open, with what the replay found.
#[derive(Debug)]
pub(crate) struct Rebuilt {
    /// The state as of the log end offset.
    pub state: ProducerState,
    /// Offset the replay started from (the snapshot's).
    pub replayed_from: i64,
    /// The transactions aborted at or past `replayed_from`, with the base offset of the
    /// segment each marker is in.
    pub aborted: Vec<(i64, AbortedTxn)>,
}

/// Loads the newest producer snapshot and replays the batch headers after it, or after
/// `known_from` when that is later (and the transaction markers, whose aborts rebuild the
/// aborted-transaction index); replayed batches count as appended at `now_ms`.
pub(crate) fn rebuild_producers(
    dir: &Path,
    segments: &[Arc<Segment>],
    known_from: i64,
    log_end_offset: i64,
    now_ms: i64,
    max_producers: usize,
) -> Result<Rebuilt, StorageError> {
    let (mut state, from) = ProducerState::load_snapshot(dir, log_end_offset, max_producers);
    // Nothing before `known_from` holds producers to rebuild.
    let from = from.max(known_from);
    let mut aborted = Vec::new();
    let first = segments.partition_point(|s| s.base_offset() <= from).saturating_sub(1);
    for segment in &segments[first..] {
        segment.reader()?.for_each_batch_from(from, |b| {
            if b.base_offset() < from || b.producer_id() < 0 {
                return;
            }
            if b.is_control() {
                let Some(commit) = marker_is_commit(b) else { return };
                let at = b.base_offset();
                let began =
                    state.complete_txn(b.producer_id(), b.producer_epoch(), now_ms, max_producers);
                if let (false, Some(first_offset)) = (commit, began) {
                    let last_stable_offset = state.first_unstable_offset().unwrap_or(at + 1);
                    let txn = AbortedTxn {
                        producer_id: b.producer_id(),
                        first_offset,
                        last_offset: at,
                        last_stable_offset,
                    };
                    aborted.push((segment.base_offset(), txn));
                }
            } else if b.base_sequence() >= 0 {
                let ib = IdempotentBatch {
                    producer_id: b.producer_id(),
                    epoch: b.producer_epoch(),
                    first_seq: b.base_sequence(),
                    // From the offsets, not the count: a batch that compaction emptied
                    // keeps its last offset delta, and so its last sequence (Kafka's rule).
                    record_count: b.last_offset_delta() + 1,
                    transactional: b.is_transactional(),
                };
                state.update(&ib, b.base_offset(), b.last_offset(), now_ms, max_producers);
            }
        });
    }
    Ok(Rebuilt { state, replayed_from: from, aborted })
}

/// Whether a control batch is a COMMIT (true) or ABORT (false) marker; `None` for other
/// control records or one that does not parse.
pub(crate) fn marker_is_commit(b: &RecordBatch<'_>) -> Option<bool> {
    let records = b.records(1 << 10).ok()?;
    let record = records.iter().next()?.ok()?;
    match record.control_type()? {
        ControlType::Commit => Some(true),
        ControlType::Abort => Some(false),
        ControlType::Other(_) => None,
    }
}
