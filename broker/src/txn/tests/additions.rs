//! Tests of what a transaction takes in: AddPartitionsToTxn and its `verify_only`
//! check, AddOffsetsToTxn, TxnOffsetCommit, and the bounds of one transaction.

use super::*;

#[test]
fn add_partitions_checks_the_producer_and_starts_a_transaction() {
    let mut h = H::new();
    assert_eq!(h.add(T, 1, 0, &[("a", 0)]), ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    let (pid, epoch) = h.init(T).unwrap();
    assert_eq!(h.add(T, pid + 1, epoch, &[("a", 0)]), ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    assert_eq!(h.add(T, pid, epoch + 1, &[("a", 0)]), ErrorCode::PRODUCER_FENCED);
    assert_eq!(h.add("", pid, epoch, &[("a", 0)]), ErrorCode::INVALID_REQUEST);
    let writes = h.log.len();
    assert_eq!(h.add(T, pid, epoch, &[("a", 0), ("b", 1)]), ErrorCode::NONE);
    assert_eq!(h.state(T), TxnState::Ongoing);
    let start = h.c.txn(T).unwrap().start_ms;
    assert_eq!(start, h.now);
    assert_eq!(h.log.len(), writes + 1);
    // Already in: answered without a write.
    assert_eq!(h.add(T, pid, epoch, &[("a", 0)]), ErrorCode::NONE);
    assert_eq!(h.log.len(), writes + 1);
    h.now += 5;
    assert_eq!(h.add(T, pid, epoch, &[("c", 0)]), ErrorCode::NONE);
    let t = h.c.txn(T).unwrap();
    assert_eq!(t.partitions.len(), 3);
    assert_eq!(t.start_ms, start, "the transaction keeps its start");
    // The produce path's view.
    assert_eq!(h.index.verify_partition(pid, epoch, "a", 0), Ok(()));
    assert_eq!(h.index.verify_partition(pid, epoch, "a", 1), Err(ErrorCode::INVALID_TXN_STATE));
    assert_eq!(
        h.index.verify_partition(pid, epoch - 1, "a", 0),
        Err(ErrorCode::INVALID_PRODUCER_EPOCH)
    );
    assert_eq!(
        h.index.verify_partition(pid + 9, 0, "a", 0),
        Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING)
    );
}

#[test]
fn a_partition_whose_add_is_being_written_is_concurrent_not_invalid_for_the_produce_path() {
    let mut h = H::new();
    let (pid, epoch) = h.init(T).unwrap();
    h.add(T, pid, epoch, &[("a", 0)]);
    let add = TxnRequest::AddPartitions {
        txn_id: T.into(),
        producer_id: pid,
        epoch,
        partitions: vec![tp("b", 0)],
        verify_only: false,
    };
    let (token, writes) = h.ask_held(add);
    // The transaction is Ongoing with the add in flight: a batch for the partition being
    // added is retriable (its client may already hold the answer under load).
    assert_eq!(h.index.verify_partition(pid, epoch, "a", 0), Ok(()));
    assert_eq!(
        h.index.verify_partition(pid, epoch, "b", 0),
        Err(ErrorCode::CONCURRENT_TRANSACTIONS)
    );
    let out = h.c.step(Input::Written { id: writes[0], result: Ok(()) }, h.now);
    h.absorb(out, true);
    assert_eq!(h.reply_of(token), Some(TxnReply::AddPartitions(ErrorCode::NONE)));
    assert_eq!(h.index.verify_partition(pid, epoch, "b", 0), Ok(()));
    assert_eq!(h.index.verify_partition(pid, epoch, "c", 0), Err(ErrorCode::INVALID_TXN_STATE));
}

#[test]
fn verify_only_answers_per_partition_and_changes_nothing() {
    let mut h = H::new();
    let (pid, epoch) = h.init(T).unwrap();
    h.add(T, pid, epoch, &[("a", 0)]);
    let writes = h.log.len();
    let r = h.ask(TxnRequest::AddPartitions {
        txn_id: T.into(),
        producer_id: pid,
        epoch,
        partitions: vec![tp("a", 0), tp("a", 1)],
        verify_only: true,
    });
    assert_eq!(r, TxnReply::Verify(vec![ErrorCode::NONE, ErrorCode::INVALID_TXN_STATE]));
    let r = h.ask(TxnRequest::AddPartitions {
        txn_id: T.into(),
        producer_id: pid,
        epoch: epoch + 1,
        partitions: vec![tp("a", 0)],
        verify_only: true,
    });
    assert_eq!(r, TxnReply::Verify(vec![ErrorCode::PRODUCER_FENCED]));
    assert_eq!(h.log.len(), writes);
}

#[test]
fn offsets_need_add_offsets_and_go_with_a_commit_only() {
    let mut h = H::new();
    let (pid, epoch) = h.init(T).unwrap();
    let commit = |h: &mut H, epoch: i16| {
        h.ask(TxnRequest::TxnOffsetCommit {
            txn_id: T.into(),
            producer_id: pid,
            epoch,
            group: "g".into(),
            offsets: vec![(
                tp("a", 0),
                PendingOffset { offset: 5, leader_epoch: 1, metadata: String::new() },
            )],
        })
    };
    assert_eq!(commit(&mut h, epoch), TxnReply::Error(ErrorCode::INVALID_TXN_STATE));
    let add =
        TxnRequest::AddOffsets { txn_id: T.into(), producer_id: pid, epoch, group: "g".into() };
    assert_eq!(h.ask(add.clone()), TxnReply::Error(ErrorCode::NONE));
    assert_eq!(h.state(T), TxnState::Ongoing);
    assert_eq!(commit(&mut h, epoch + 1), TxnReply::Error(ErrorCode::INVALID_PRODUCER_EPOCH));
    assert_eq!(commit(&mut h, epoch), TxnReply::Error(ErrorCode::NONE));
    assert!(h.index.has_pending_offset("g", "a", 0));
    assert!(!h.index.has_pending_offset("g", "a", 1));
    let d = match h.ask(TxnRequest::Describe(vec![T.into()])) {
        TxnReply::Describe(d) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(d[0].partitions, vec![tp("__consumer_offsets", 0)]);
    assert_eq!(h.end(T, pid, epoch, false), ErrorCode::NONE);
    assert!(h.completions.last().unwrap().offsets.is_empty(), "an abort drops them");
    h.complete_all();
    assert!(!h.index.has_pending_offset("g", "a", 0));
    assert_eq!(h.ask(add), TxnReply::Error(ErrorCode::NONE));
    assert_eq!(commit(&mut h, epoch), TxnReply::Error(ErrorCode::NONE));
    assert_eq!(h.end(T, pid, epoch, true), ErrorCode::NONE);
    assert_eq!(h.completions.last().unwrap().offsets.len(), 1, "a commit applies them");
    assert!(h.index.has_pending_offset("g", "a", 0), "pending until complete");
    h.complete_all();
    assert!(!h.index.group_has_pending_offsets("g"));
}

#[test]
fn a_transaction_is_bounded() {
    let mut h = H::new();
    let (pid, epoch) = h.init(T).unwrap();
    let partitions: Vec<TopicPartition> =
        (0..=MAX_TXN_PARTITIONS as i32).map(|p| tp("a", p)).collect();
    let r = TxnRequest::AddPartitions {
        txn_id: T.into(),
        producer_id: pid,
        epoch,
        partitions,
        verify_only: false,
    };
    assert_eq!(h.ask(r), TxnReply::AddPartitions(ErrorCode::INVALID_REQUEST));
    assert_eq!(h.state(T), TxnState::Empty);
    for g in 0..MAX_TXN_GROUPS {
        let r = TxnRequest::AddOffsets {
            txn_id: T.into(),
            producer_id: pid,
            epoch,
            group: format!("g{g}"),
        };
        assert_eq!(h.ask(r), TxnReply::Error(ErrorCode::NONE));
    }
    let r = TxnRequest::AddOffsets {
        txn_id: T.into(),
        producer_id: pid,
        epoch,
        group: "one more".into(),
    };
    assert_eq!(h.ask(r), TxnReply::Error(ErrorCode::INVALID_REQUEST));
    let big = PendingOffset { offset: 0, leader_epoch: -1, metadata: "x".repeat(4097) };
    let r = TxnRequest::TxnOffsetCommit {
        txn_id: T.into(),
        producer_id: pid,
        epoch,
        group: "g0".into(),
        offsets: vec![(tp("a", 0), big)],
    };
    assert_eq!(h.ask(r), TxnReply::Error(ErrorCode::OFFSET_METADATA_TOO_LARGE));
}
