//! Tests of EndTxn and the completion: Prepare*, markers and offsets, Complete*, the
//! requests that wait for it, and its recovery after a restart or a failed write.

use super::*;

#[test]
fn end_txn_commits_through_prepare_markers_and_complete() {
    let mut h = H::new();
    let (pid, epoch) = h.init(T).unwrap();
    assert_eq!(h.end(T, pid, epoch, true), ErrorCode::INVALID_TXN_STATE, "nothing to end");
    h.add(T, pid, epoch, &[("a", 0), ("b", 0)]);
    // The reply waits for the Prepare write.
    let (token, writes) =
        h.ask_held(TxnRequest::EndTxn { txn_id: T.into(), producer_id: pid, epoch, commit: true });
    assert_eq!(writes.len(), 1);
    assert!(h.reply_of(token).is_none());
    // A retry meanwhile waits for the transition to end.
    let end = TxnRequest::EndTxn { txn_id: T.into(), producer_id: pid, epoch, commit: true };
    let (retry, none) = h.ask_held(end);
    assert!(none.is_empty());
    let out = h.c.step(Input::Written { id: writes[0], result: Ok(()) }, h.now);
    h.absorb(out, true);
    assert_eq!(h.reply_of(token), Some(TxnReply::Error(ErrorCode::NONE)));
    assert_eq!(h.state(T), TxnState::PrepareCommit);
    let c = h.completions.last().unwrap().clone();
    assert!(c.commit);
    assert_eq!(c.partitions, vec![tp("a", 0), tp("b", 0)]);
    assert_eq!((c.producer_id, c.producer_epoch), (pid, epoch));
    assert!(h.reply_of(retry).is_none(), "the retry waits for the markers too");
    // While the markers are written, with the one waiting place taken.
    assert_eq!(h.add(T, pid, epoch, &[("c", 0)]), ErrorCode::CONCURRENT_TRANSACTIONS);
    assert_eq!(h.init(T), Err(ErrorCode::CONCURRENT_TRANSACTIONS));
    assert_eq!(h.end(T, pid, epoch, true), ErrorCode::CONCURRENT_TRANSACTIONS);
    assert_eq!(h.end(T, pid, epoch, false), ErrorCode::INVALID_TXN_STATE);
    assert_eq!(
        h.index.verify_partition(pid, epoch, "a", 0),
        Err(ErrorCode::CONCURRENT_TRANSACTIONS)
    );
    h.complete_all();
    assert_eq!(h.state(T), TxnState::CompleteCommit);
    assert_eq!(h.reply_of(retry), Some(TxnReply::Error(ErrorCode::NONE)));
    assert!(h.c.txn(T).unwrap().partitions.is_empty());
    // Retries of the same result succeed; the other result does not.
    assert_eq!(h.end(T, pid, epoch, true), ErrorCode::NONE);
    assert_eq!(h.end(T, pid, epoch, false), ErrorCode::INVALID_TXN_STATE);
    assert_eq!(h.end(T, pid, epoch + 1, true), ErrorCode::PRODUCER_FENCED);
    // A next transaction starts from a completed one.
    assert_eq!(h.add(T, pid, epoch, &[("c", 0)]), ErrorCode::NONE);
    assert_eq!(h.c.txn(T).unwrap().partitions.len(), 1);
    assert_eq!(h.end(T, pid, epoch, false), ErrorCode::NONE);
    h.complete_all();
    assert_eq!(h.state(T), TxnState::CompleteAbort);
}

#[test]
fn the_next_transactions_add_waits_for_the_markers_then_is_refused_after_park_max() {
    let mut h = H::new();
    let (pid, epoch) = h.init(T).unwrap();
    h.add(T, pid, epoch, &[("a", 0)]);
    assert_eq!(h.end(T, pid, epoch, true), ErrorCode::NONE);
    let add = |p| TxnRequest::AddPartitions {
        txn_id: T.into(),
        producer_id: pid,
        epoch,
        partitions: vec![tp("a", p)],
        verify_only: false,
    };
    // Arrives while the markers are written: answered once the transaction is complete,
    // as the first add of the next one.
    h.token += 1;
    let out = h.c.step(Input::Request { token: h.token, request: add(1) }, h.now);
    let (next, until) = (h.token, h.now + PARK_MAX_MS);
    assert!(out.contains(&Output::SetTimer { timer: TimerKey::Parked, at_ms: until }), "{out:?}");
    h.absorb(out, true);
    assert!(h.reply_of(next).is_none());
    h.complete_all();
    assert_eq!(h.reply_of(next), Some(TxnReply::AddPartitions(ErrorCode::NONE)));
    let t = h.c.txn(T).unwrap();
    assert_eq!((t.state, t.partitions.len()), (TxnState::Ongoing, 1));
    assert!(t.partitions.contains(&tp("a", 1)));

    // Markers that take longer than PARK_MAX_MS: CONCURRENT_TRANSACTIONS at the deadline,
    // not before, and the transaction is left as it was.
    assert_eq!(h.end(T, pid, epoch, false), ErrorCode::NONE);
    let (late, _) = h.ask_held(add(2));
    h.now += PARK_MAX_MS - 1;
    let out = h.c.step(Input::Timer(TimerKey::Parked), h.now);
    h.absorb(out, true);
    assert!(h.reply_of(late).is_none());
    h.now += 1;
    let out = h.c.step(Input::Timer(TimerKey::Parked), h.now);
    h.absorb(out, true);
    assert_eq!(h.reply_of(late), Some(TxnReply::AddPartitions(ErrorCode::CONCURRENT_TRANSACTIONS)));
    h.complete_all();
    assert_eq!(h.state(T), TxnState::CompleteAbort);
    assert!(h.replies.is_empty(), "a refused request is not answered twice: {:?}", h.replies);
}

#[test]
fn prepare_states_are_finished_after_a_restart() {
    let mut h = H::new();
    let (pid, epoch) = h.init(T).unwrap();
    h.add(T, pid, epoch, &[("a", 0)]);
    h.ask(TxnRequest::AddOffsets { txn_id: T.into(), producer_id: pid, epoch, group: "g".into() });
    let offset = PendingOffset { offset: 42, leader_epoch: -1, metadata: "m".into() };
    h.ask(TxnRequest::TxnOffsetCommit {
        txn_id: T.into(),
        producer_id: pid,
        epoch,
        group: "g".into(),
        offsets: vec![(tp("a", 0), offset.clone())],
    });
    let (pid2, epoch2) = h.init("aborting").unwrap();
    h.add("aborting", pid2, epoch2, &[("b", 3)]);
    assert_eq!(h.end(T, pid, epoch, true), ErrorCode::NONE);
    assert_eq!(h.end("aborting", pid2, epoch2, false), ErrorCode::NONE);
    // The broker dies before the markers are written: a new coordinator from the log.
    let mut c = h.reload();
    assert!(c.is_loading());
    assert_eq!(c.txn(T).unwrap().state, TxnState::PrepareCommit);
    assert!(c.has_pending_offsets("g", &tp("a", 0)));
    let out = c.finish_loading(h.now);
    let completions: Vec<Completion> = out
        .into_iter()
        .filter_map(|o| if let Output::Complete(c) = o { Some(c) } else { None })
        .collect();
    assert_eq!(completions.len(), 2);
    assert_eq!(completions[0].txn_id, "aborting");
    assert!(!completions[0].commit && completions[0].offsets.is_empty());
    assert_eq!(completions[1].partitions, vec![tp("a", 0)]);
    assert_eq!(completions[1].offsets, vec![("g".to_string(), vec![(tp("a", 0), offset)])]);
    // Finishing them writes the Complete states.
    for done in completions {
        let out = c.step(
            Input::Completed {
                txn_id: done.txn_id,
                producer_id: done.producer_id,
                producer_epoch: done.producer_epoch,
            },
            h.now,
        );
        let writes: Vec<WriteId> = out
            .iter()
            .filter_map(|o| if let Output::Write { id, .. } = o { Some(*id) } else { None })
            .collect();
        for id in writes {
            c.step(Input::Written { id, result: Ok(()) }, h.now);
        }
    }
    assert_eq!(c.txn(T).unwrap().state, TxnState::CompleteCommit);
    assert_eq!(c.txn("aborting").unwrap().state, TxnState::CompleteAbort);
    assert!(!c.has_pending_offsets("g", &tp("a", 0)));
}

#[test]
fn a_failed_complete_write_is_retried_at_the_next_check() {
    let mut h = H::new();
    let (pid, epoch) = h.init(T).unwrap();
    h.add(T, pid, epoch, &[("a", 0)]);
    h.end(T, pid, epoch, true);
    let c = h.completions.pop().unwrap();
    let out = h.c.step(
        Input::Completed {
            txn_id: c.txn_id,
            producer_id: c.producer_id,
            producer_epoch: c.producer_epoch,
        },
        h.now,
    );
    let writes = h.absorb(out, false);
    let out = h
        .c
        .step(Input::Written { id: writes[0], result: Err(ErrorCode::KAFKA_STORAGE_ERROR) }, h.now);
    h.absorb(out, true);
    assert_eq!(h.state(T), TxnState::PrepareCommit);
    let out = h.c.step(Input::Timer(TimerKey::AbortTimedOut), h.now);
    h.absorb(out, true);
    assert_eq!(h.state(T), TxnState::CompleteCommit);
}
