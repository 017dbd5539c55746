//! Transactions in the partition log: the last stable offset, markers, the aborted
//! transaction index, and what read_committed readers get, across reopens and crashes.

use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;
use sluice_protocol::record::RecordBatch;

use super::testing::{batch, idempotent_batch, small_config, transactional_batch};
use super::{AbortedTxn, Isolation, PartitionLog, StorageError, TxnMarker};

fn marker(pid: i64, epoch: i16, commit: bool) -> TxnMarker {
    TxnMarker { producer_id: pid, producer_epoch: epoch, coordinator_epoch: 0, commit }
}

/// A batch as read: (base offset, last offset, producer id, control).
type Read = (i64, i64, i64, bool);

/// Every batch a read_committed reader gets from `log`, from the log start to the last
/// stable offset, with the aborted transactions each read listed.
fn read_committed(log: &PartitionLog) -> (Vec<Read>, Vec<AbortedTxn>) {
    let mut batches = Vec::new();
    let mut aborted: Vec<AbortedTxn> = Vec::new();
    let mut offset = log.log_start_offset();
    loop {
        let read = log.read_isolated(offset, 700, Isolation::ReadCommitted).unwrap();
        let Some(slice) = read.slice else { break };
        for a in read.aborted {
            if !aborted.contains(&a) {
                aborted.push(a);
            }
        }
        let bytes = slice.read_to_vec().unwrap();
        let mut pos = 0;
        while pos < bytes.len() {
            let b = RecordBatch::parse_verified(&bytes[pos..]).unwrap();
            assert!(b.last_offset() < read.last_stable_offset, "nothing past the LSO");
            batches.push((b.base_offset(), b.last_offset(), b.producer_id(), b.is_control()));
            offset = b.last_offset() + 1;
            pos += b.size();
        }
    }
    (batches, aborted)
}

/// The data offsets a Kafka consumer keeps from a read_committed read: aborted
/// transactions' batches are dropped from their first offset to their marker, per
/// producer, as Kafka's fetcher does.
fn visible(batches: &[Read], aborted: &[AbortedTxn]) -> Vec<i64> {
    let mut starts: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for a in aborted {
        starts.entry(a.first_offset).or_default().push(a.producer_id);
    }
    let mut skipping: HashSet<i64> = HashSet::new();
    let mut out = Vec::new();
    for &(base, last, pid, control) in batches {
        for (_, pids) in starts.range(..=last) {
            skipping.extend(pids);
        }
        starts.retain(|first, _| *first > last);
        if control {
            skipping.remove(&pid);
            continue;
        }
        if !skipping.contains(&pid) {
            out.extend(base..=last);
        }
    }
    out
}

#[test]
fn the_last_stable_offset_waits_for_the_first_ongoing_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&batch(0, 2, 10)).unwrap(); // 0..=1
    log.append(&transactional_batch(7, 0, 0, 3)).unwrap(); // 2..=4
    log.append(&batch(0, 1, 10)).unwrap(); // 5
    log.append(&transactional_batch(8, 0, 0, 1)).unwrap(); // 6
    assert_eq!((log.last_stable_offset(), log.high_watermark()), (2, 7));
    let read = log.read_isolated(0, 1 << 20, Isolation::ReadCommitted).unwrap();
    assert_eq!(read.slice.unwrap().len, batch(0, 2, 10).len() as u64, "only below the LSO");
    assert!(log.read_isolated(2, 1 << 20, Isolation::ReadCommitted).unwrap().slice.is_none());
    // read_uncommitted sees everything.
    let all = log.read(2, 1 << 20).unwrap();
    assert_eq!(all.last_stable_offset, 2);
    assert!(all.slice.unwrap().len > 0);

    let commit = log.append_txn_marker(&marker(7, 0, true)).unwrap();
    assert_eq!(commit.base_offset, 7);
    assert_eq!(log.last_stable_offset(), 6, "producer 8 still holds it");
    log.append_txn_marker(&marker(8, 0, true)).unwrap();
    assert_eq!(log.last_stable_offset(), 9);
    let (batches, aborted) = read_committed(&log);
    assert!(aborted.is_empty());
    assert_eq!(visible(&batches, &aborted), vec![0, 1, 2, 3, 4, 5, 6]);
}

#[test]
fn an_abort_is_listed_to_the_reads_it_overlaps_and_its_records_drop() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&transactional_batch(1, 0, 0, 2)).unwrap(); // 0..=1
    log.append(&transactional_batch(2, 0, 0, 2)).unwrap(); // 2..=3
    log.append(&transactional_batch(1, 0, 2, 2)).unwrap(); // 4..=5
    log.append_txn_marker(&marker(1, 0, false)).unwrap(); // 6: abort producer 1
    assert_eq!(log.last_stable_offset(), 2);
    log.append(&batch(0, 1, 10)).unwrap(); // 7
    log.append_txn_marker(&marker(2, 0, true)).unwrap(); // 8
    assert_eq!(log.last_stable_offset(), 9);
    assert_eq!(log.aborted_transaction_count(), 1);
    let (batches, aborted) = read_committed(&log);
    assert_eq!(
        aborted,
        vec![AbortedTxn { producer_id: 1, first_offset: 0, last_offset: 6, last_stable_offset: 2 }]
    );
    assert_eq!(visible(&batches, &aborted), vec![2, 3, 7]);
    // A read past the abort's marker is not told of it.
    let after = log.read_isolated(7, 1 << 20, Isolation::ReadCommitted).unwrap();
    assert!(after.aborted.is_empty());
}

#[test]
fn markers_fence_older_epochs_and_a_producer_may_not_write_outside_its_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.append(&transactional_batch(1, 3, 0, 1)).unwrap();
    assert!(matches!(
        log.append(&idempotent_batch(1, 3, 1, 1)),
        Err(StorageError::InvalidTxnState { producer_id: 1, .. })
    ));
    assert!(matches!(
        log.append_txn_marker(&marker(1, 2, false)),
        Err(StorageError::InvalidProducerEpoch { current: 3, found: 2, .. })
    ));
    // The coordinator aborts a timed-out transaction with the epoch bumped: the zombie's
    // next batch is fenced.
    log.append_txn_marker(&marker(1, 4, false)).unwrap();
    assert!(matches!(
        log.append(&transactional_batch(1, 3, 1, 1)),
        Err(StorageError::InvalidProducerEpoch { current: 4, .. })
    ));
    log.append(&transactional_batch(1, 4, 0, 1)).unwrap();
    // A marker with no transaction to end is written and ends nothing.
    log.append_txn_marker(&marker(9, 0, false)).unwrap();
    assert_eq!(log.aborted_transaction_count(), 1);
}

#[test]
fn transactions_survive_a_clean_reopen_and_a_crash_and_a_lost_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let expected;
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for i in 0..40 {
            let pid = i % 3;
            log.append(&transactional_batch(pid, 0, (i / 3) as i32 * 2, 2)).unwrap();
            log.append(&batch(0, 1, 1500)).unwrap();
            if i % 3 == 2 {
                for p in 0..3 {
                    log.append_txn_marker(&marker(p, 0, (i / 3 + p) % 2 == 0)).unwrap();
                }
            }
        }
        assert!(log.segment_base_offsets().len() > 3, "several segments");
        expected =
            (read_committed(&log), log.last_stable_offset(), log.aborted_transaction_count());
        assert!(expected.2 > 5);
        log.close().unwrap();
    }
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        assert_eq!(
            (read_committed(&log), log.last_stable_offset(), log.aborted_transaction_count()),
            expected
        );
    }
    let synced;
    let before_crash;
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        let last = *log.segment_base_offsets().last().unwrap();
        let index = super::txn_index::path(dir.path(), last);
        synced = (index.clone(), std::fs::metadata(&index).map_or(0, |m| m.len()));
        // Two more aborts, unsynced, then a transaction left open by the crash.
        for p in [11, 12] {
            log.append(&transactional_batch(p, 0, 100, 1)).unwrap();
            log.append_txn_marker(&marker(p, 0, false)).unwrap();
        }
        log.append(&transactional_batch(5, 0, 0, 1)).unwrap();
        log.append(&batch(0, 1, 10)).unwrap();
        before_crash = (read_committed(&log), log.last_stable_offset());
        assert_eq!(log.aborted_transaction_count(), expected.2 + 2);
        // dropped without close: a crash
    }
    // The crash lost the index entries not yet synced (the log's bytes survived, as in
    // the page cache after a SIGKILL): the replay of the tail rebuilds them.
    if synced.0.exists() {
        let f = std::fs::OpenOptions::new().write(true).open(&synced.0).unwrap();
        f.set_len(synced.1).unwrap();
    }
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.aborted_transaction_count(), expected.2 + 2);
    assert_eq!((read_committed(&log), log.last_stable_offset()), before_crash);
    // Producer 0's last transaction (from before the clean close) and producer 5's (from
    // before the crash) are still open.
    let ongoing: Vec<i64> = log.ongoing_transactions().iter().map(|(pid, _)| *pid).collect();
    assert_eq!(ongoing, vec![0, 5]);
    log.append_txn_marker(&marker(0, 0, true)).unwrap();
    assert!(log.last_stable_offset() < log.log_end_offset(), "producer 5 holds the LSO");
    log.append_txn_marker(&marker(5, 0, true)).unwrap();
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
}

#[test]
fn retention_forgets_the_aborts_of_deleted_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..30 {
        log.append(&transactional_batch(1, 0, i * 2, 2)).unwrap();
        log.append(&batch(0, 1, 2000)).unwrap();
        log.append_txn_marker(&marker(1, 0, false)).unwrap();
    }
    let before = log.aborted_transaction_count();
    assert_eq!(before, 30);
    let start = log.segment_base_offsets()[2];
    log.delete_records(start).unwrap();
    let after = log.aborted_transaction_count();
    assert!(after < before && after > 0, "{after} of {before}");
    let (batches, aborted) = read_committed(&log);
    assert_eq!(
        visible(&batches, &aborted).len() as i64,
        batches.iter().filter(|b| !b.3 && b.2 < 0).map(|b| b.1 - b.0 + 1).sum::<i64>()
    );
}

#[derive(Debug, Clone)]
enum Op {
    /// A transactional batch of producer `pid` (of 4), `count` records.
    Txn {
        pid: i64,
        count: i32,
    },
    /// A plain batch.
    Plain,
    /// The coordinator ends producer `pid`'s transaction.
    End {
        pid: i64,
        commit: bool,
    },
    Reopen {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4i64, 1..4i32).prop_map(|(pid, count)| Op::Txn { pid, count }),
        2 => Just(Op::Plain),
        3 => (0..4i64, any::<bool>()).prop_map(|(pid, commit)| Op::End { pid, commit }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Producers interleaving transactions in one partition, with reopens clean and not:
    /// a read_committed reader keeps exactly the committed and plain records below the
    /// last stable offset, which is the first offset of the oldest ongoing transaction.
    #[test]
    fn read_committed_keeps_exactly_what_was_committed(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Some(PartitionLog::open(dir.path(), small_config()).unwrap());
        let mut seq: HashMap<i64, i32> = HashMap::new();
        // Model: each producer's open transaction (its offsets), and the kept offsets.
        let mut open: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut kept: Vec<i64> = Vec::new();
        for op in ops {
            let l = log.as_ref().unwrap();
            match op {
                Op::Txn { pid, count } => {
                    let s = seq.entry(pid).or_insert(0);
                    let a = l.append(&transactional_batch(pid, 0, *s, count)).unwrap();
                    *s += count;
                    open.entry(pid).or_default().extend(a.base_offset..=a.last_offset);
                }
                Op::Plain => {
                    let a = l.append(&batch(0, 2, 50)).unwrap();
                    kept.extend(a.base_offset..=a.last_offset);
                }
                Op::End { pid, commit } => {
                    l.append_txn_marker(&marker(pid, 0, commit)).unwrap();
                    let offsets = open.remove(&pid).unwrap_or_default();
                    if commit {
                        kept.extend(offsets);
                    }
                }
                Op::Reopen { clean } => {
                    let l = log.take().unwrap();
                    if clean {
                        l.close().unwrap();
                    }
                    drop(l);
                    log = Some(PartitionLog::open(dir.path(), small_config()).unwrap());
                }
            }
        }
        let l = log.as_ref().unwrap();
        let lso = open.values().filter_map(|o| o.first().copied()).min().unwrap_or(l.log_end_offset());
        prop_assert_eq!(l.last_stable_offset(), lso);
        let (batches, aborted) = read_committed(l);
        kept.sort_unstable();
        kept.retain(|o| *o < lso);
        prop_assert_eq!(visible(&batches, &aborted), kept);
    }
}
