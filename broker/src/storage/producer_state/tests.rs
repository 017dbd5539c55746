use std::fs;

use super::*;
use crate::storage::io::RealIo;

fn b(pid: i64, epoch: i16, first_seq: i32, count: i32) -> IdempotentBatch {
    IdempotentBatch {
        producer_id: pid,
        epoch,
        first_seq,
        record_count: count,
        transactional: false,
    }
}

fn txn(pid: i64, epoch: i16, first_seq: i32, count: i32) -> IdempotentBatch {
    IdempotentBatch { transactional: true, ..b(pid, epoch, first_seq, count) }
}

#[test]
fn transactions_hold_the_last_stable_offset_until_their_markers() {
    let mut s = ProducerState::default();
    s.update(&txn(1, 0, 0, 5), 10, 14, 1000, usize::MAX);
    s.update(&txn(2, 0, 0, 1), 15, 15, 1000, usize::MAX);
    s.update(&txn(1, 0, 5, 1), 16, 16, 1000, usize::MAX);
    assert_eq!(s.first_unstable_offset(), Some(10));
    // A write outside the ongoing transaction is refused.
    assert!(matches!(s.check(&b(1, 0, 6, 1)), Err(StorageError::InvalidTxnState { .. })));
    assert_eq!(s.complete_txn(1, 0, 1000, usize::MAX), Some(10));
    assert_eq!(s.first_unstable_offset(), Some(15));
    assert_eq!(s.complete_txn(2, 0, 1000, usize::MAX), Some(15));
    assert_eq!(s.first_unstable_offset(), None);
    // A second marker finds nothing to end.
    assert_eq!(s.complete_txn(2, 0, 1000, usize::MAX), None);
    // The sequence goes on after a commit; the next transaction opens at its batch.
    assert_eq!(s.check(&txn(1, 0, 6, 1)).unwrap(), Check::Append);
}

#[test]
fn a_marker_with_a_bumped_epoch_fences_the_old_one() {
    let mut s = ProducerState::default();
    s.update(&txn(1, 3, 0, 5), 0, 4, 1000, usize::MAX);
    assert!(matches!(
        s.check_marker(1, 2),
        Err(StorageError::InvalidProducerEpoch { current: 3, found: 2, .. })
    ));
    assert_eq!(s.complete_txn(1, 4, 1000, usize::MAX), Some(0));
    assert!(matches!(s.check(&txn(1, 3, 5, 1)), Err(StorageError::InvalidProducerEpoch { .. })));
    assert_eq!(s.check(&txn(1, 4, 0, 1)).unwrap(), Check::Append);
}

#[test]
fn a_producer_in_a_transaction_neither_expires_nor_is_evicted_and_survives_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = ProducerState::default();
    s.update(&txn(1, 0, 0, 1), 0, 0, 1000, 2);
    s.update(&b(2, 0, 0, 1), 1, 1, 1001, 2);
    s.update(&b(3, 0, 0, 1), 2, 2, 1002, 2);
    assert!(s.get(1).is_some() && s.get(2).is_none(), "the idle non-transactional one goes");
    assert_eq!(s.expire(1000 + DAY * 2, DAY), 1);
    assert!(s.get(1).is_some());
    s.write_snapshot(&RealIo, dir.path(), 3).unwrap();
    let (loaded, _) = ProducerState::load_snapshot(dir.path(), 3, usize::MAX);
    assert_eq!(loaded.first_unstable_offset(), Some(0));
    assert_eq!(loaded, s);
}

#[test]
fn in_order_batches_append_and_a_retry_is_a_duplicate() {
    let mut s = ProducerState::default();
    assert_eq!(s.check(&b(7, 0, 0, 5)).unwrap(), Check::Append);
    s.update(&b(7, 0, 0, 5), 100, 104, 1000, usize::MAX);
    assert_eq!(s.check(&b(7, 0, 5, 3)).unwrap(), Check::Append);
    s.update(&b(7, 0, 5, 3), 105, 107, 1000, usize::MAX);
    assert_eq!(
        s.check(&b(7, 0, 0, 5)).unwrap(),
        Check::Duplicate { first_offset: 100, last_offset: 104 }
    );
    assert_eq!(
        s.check(&b(7, 0, 5, 3)).unwrap(),
        Check::Duplicate { first_offset: 105, last_offset: 107 }
    );
}

#[test]
fn a_gap_is_out_of_order() {
    let mut s = ProducerState::default();
    s.update(&b(7, 0, 0, 5), 0, 4, 1000, usize::MAX);
    let err = s.check(&b(7, 0, 6, 1)).unwrap_err();
    assert!(matches!(err, StorageError::OutOfOrderSequence { expected: 5, found: 6, .. }), "{err}");
}

#[test]
fn a_stale_epoch_is_fenced_and_a_new_epoch_starts_at_zero() {
    let mut s = ProducerState::default();
    s.update(&b(7, 3, 0, 1), 0, 0, 1000, usize::MAX);
    assert!(matches!(
        s.check(&b(7, 2, 1, 1)),
        Err(StorageError::InvalidProducerEpoch { current: 3, found: 2, .. })
    ));
    assert!(matches!(
        s.check(&b(7, 4, 9, 1)),
        Err(StorageError::OutOfOrderSequence { expected: 0, .. })
    ));
    assert_eq!(s.check(&b(7, 4, 0, 1)).unwrap(), Check::Append);
    s.update(&b(7, 4, 0, 1), 1, 1, 1000, usize::MAX);
    // The old epoch's batches are gone: its retry is fenced, not a duplicate.
    assert!(s.check(&b(7, 3, 0, 1)).is_err());
}

#[test]
fn only_the_last_five_batches_are_remembered() {
    let mut s = ProducerState::default();
    for i in 0..7 {
        s.update(&b(1, 0, i, 1), i64::from(i), i64::from(i), 1000, usize::MAX);
    }
    assert!(matches!(s.check(&b(1, 0, 1, 1)), Err(StorageError::OutOfOrderSequence { .. })));
    assert_eq!(
        s.check(&b(1, 0, 2, 1)).unwrap(),
        Check::Duplicate { first_offset: 2, last_offset: 2 }
    );
}

#[test]
fn an_unknown_producer_may_start_anywhere_and_sequences_wrap() {
    let mut s = ProducerState::default();
    assert_eq!(s.check(&b(9, 0, 42, 1)).unwrap(), Check::Append);
    s.update(&b(9, 0, i32::MAX - 1, 2), 0, 1, 1000, usize::MAX);
    assert_eq!(s.check(&b(9, 0, 0, 1)).unwrap(), Check::Append);
}

#[test]
fn snapshots_round_trip_and_corrupt_ones_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = ProducerState::default();
    s.update(&b(1, 2, 0, 3), 10, 12, 1000, usize::MAX);
    s.update(&b(5, 0, 0, 1), 13, 13, 1000, usize::MAX);
    s.write_snapshot(&RealIo, dir.path(), 14).unwrap();
    assert_eq!(ProducerState::load_snapshot(dir.path(), 100, usize::MAX), (s.clone(), 14));
    // A corrupt newest snapshot is skipped for the one before it.
    s.update(&b(5, 0, 1, 1), 14, 14, 1000, usize::MAX);
    s.write_snapshot(&RealIo, dir.path(), 20).unwrap();
    let path = dir.path().join(crate::storage::segment_file_name(20, "snapshot"));
    let text = fs::read_to_string(&path).unwrap().replace("14:14", "14:15");
    fs::write(&path, text).unwrap();
    assert_eq!(ProducerState::load_snapshot(dir.path(), 100, usize::MAX).1, 14);
    // A snapshot past the log end describes a cut tail: not used.
    let (none, at) = ProducerState::load_snapshot(dir.path(), 13, usize::MAX);
    assert_eq!((none.len(), at), (0, 0));
}

const DAY: i64 = DEFAULT_PRODUCER_ID_EXPIRATION_MS;

#[test]
fn producers_expire_by_the_broker_clock_not_batch_timestamps() {
    let mut s = ProducerState::default();
    // Appended at broker time 1000 and 5000 (batch timestamps play no part).
    s.update(&b(1, 0, 0, 1), 0, 0, 1000, usize::MAX);
    s.update(&b(2, 0, 0, 1), 1, 1, 5000, usize::MAX);
    assert_eq!(s.expire(1000 + DAY - 1, DAY), 0);
    assert_eq!(s.expire(1000 + DAY, DAY), 1);
    assert!(s.get(1).is_none() && s.get(2).is_some());
    // An append renews the lease.
    s.update(&b(2, 0, 1, 1), 2, 2, 4000 + DAY, usize::MAX);
    assert_eq!(s.expire(5000 + DAY, DAY), 0);
    assert_eq!(s.expire(4000 + 2 * DAY, DAY), 1);
    assert_eq!(s.len(), 0);
    // An expired producer may start anywhere again, as in Kafka.
    assert_eq!(s.check(&b(2, 0, 77, 1)).unwrap(), Check::Append);
}

#[test]
fn the_bound_evicts_the_longest_idle_producer() {
    let mut s = ProducerState::default();
    for pid in 0..3 {
        s.update(&b(pid, 0, 0, 1), pid, pid, 1000 + pid, 3);
    }
    // Producer 0 appends again: producer 1 is now the longest idle.
    s.update(&b(0, 0, 1, 1), 3, 3, 2000, 3);
    let evicted = s.update(&b(9, 0, 0, 1), 4, 4, 2001, 3);
    assert_eq!(evicted, 1);
    assert_eq!(s.len(), 3);
    assert!(s.get(1).is_none(), "the longest idle goes");
    assert!(s.get(0).is_some() && s.get(2).is_some() && s.get(9).is_some());
    // A staged set commits under the same bound.
    let mut staged = StagedProducers::default();
    s.stage(&mut staged, &b(10, 0, 0, 1), 5, 5);
    s.stage(&mut staged, &b(11, 0, 0, 1), 6, 6);
    assert_eq!(s.commit(staged, 3000, 3), 2);
    assert!(s.get(2).is_none() && s.get(0).is_none());
    assert_eq!(s.len(), 3);
}

#[test]
fn a_snapshot_keeps_append_times_and_recency_and_loads_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = ProducerState::default();
    for pid in 0..5 {
        s.update(&b(pid, 0, 0, 1), pid, pid, 1000 * (5 - pid), usize::MAX);
    }
    s.write_snapshot(&RealIo, dir.path(), 5).unwrap();
    let (loaded, _) = ProducerState::load_snapshot(dir.path(), 5, usize::MAX);
    assert_eq!(loaded, s);
    // Lowered to 2, the load keeps the two most recent appends: producers 0 and 1.
    let (mut small, _) = ProducerState::load_snapshot(dir.path(), 5, 2);
    assert_eq!(small.len(), 2);
    assert!(small.get(0).is_some() && small.get(1).is_some());
    assert_eq!(small.expire(4000 + DAY, DAY), 1, "producer 1 appended at 4000");
}
