//! Tests of the periodic checks: timed-out transactions, idle ids (with the describe and
//! list of what is left).

use super::*;

#[test]
fn a_timed_out_transaction_is_aborted_with_a_bumped_epoch() {
    let mut h = H::new();
    let (pid, epoch) = h.init_with(T, 1000, None).unwrap();
    h.add(T, pid, epoch, &[("a", 0)]);
    h.now += 1000;
    let out = h.c.step(Input::Timer(TimerKey::AbortTimedOut), h.now);
    h.absorb(out, true);
    assert_eq!(h.state(T), TxnState::Ongoing, "not past its timeout yet");
    h.now += 1;
    let out = h.c.step(Input::Timer(TimerKey::AbortTimedOut), h.now);
    assert!(
        out.contains(&Output::SetTimer { timer: TimerKey::AbortTimedOut, at_ms: h.now + 10_000 })
    );
    h.absorb(out, true);
    let t = h.c.txn(T).unwrap();
    assert_eq!((t.state, t.producer_epoch), (TxnState::PrepareAbort, epoch + 1));
    h.complete_all();
    assert_eq!(h.state(T), TxnState::CompleteAbort);
    assert_eq!(h.add(T, pid, epoch, &[("a", 0)]), ErrorCode::PRODUCER_FENCED);
    assert_eq!(h.end(T, pid, epoch, true), ErrorCode::PRODUCER_FENCED);
}

#[test]
fn idle_ids_expire_and_describe_and_list_filter() {
    let config = TxnConfig { id_expiration_ms: 1000, ..TxnConfig::default() };
    let mut h = H::with(config);
    let (pid, epoch) = h.init("idle").unwrap();
    let (busy_pid, busy_epoch) = h.init("busy").unwrap();
    h.add("busy", busy_pid, busy_epoch, &[("a", 0)]);
    let list = |h: &mut H, states: &[&str], pids: Vec<i64>, duration_ms| match h.ask(
        TxnRequest::List(ListFilter {
            states: states.iter().map(|s| s.to_string()).collect(),
            producer_ids: pids,
            duration_ms,
        }),
    ) {
        TxnReply::List { error: e, unknown_states: unknown, transactions: listed } => {
            assert_eq!(e, ErrorCode::NONE);
            (unknown, listed.into_iter().map(|l| l.txn_id).collect::<Vec<_>>())
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(list(&mut h, &[], vec![], -1).1, vec!["busy", "idle"]);
    assert_eq!(list(&mut h, &["Ongoing"], vec![], -1).1, vec!["busy"]);
    assert_eq!(list(&mut h, &[], vec![pid], -1).1, vec!["idle"]);
    assert_eq!(list(&mut h, &["Nope"], vec![], -1), (vec!["Nope".to_string()], vec![]));
    h.now += 500;
    assert_eq!(list(&mut h, &[], vec![], 400).1, vec!["busy"], "running 500 ms");
    assert!(list(&mut h, &[], vec![], 600).1.is_empty());
    h.now += 1000;
    let out = h.c.step(Input::Timer(TimerKey::ExpireIds), h.now);
    h.absorb(out, true);
    assert!(h.c.txn("idle").is_none());
    assert_eq!(h.log.last().unwrap().value, None, "a tombstone");
    assert!(h.c.txn("busy").is_some(), "an ongoing transaction does not expire");
    let d = match h.ask(TxnRequest::Describe(vec!["idle".into(), "busy".into()])) {
        TxnReply::Describe(d) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(d[0].error, ErrorCode::TRANSACTIONAL_ID_NOT_FOUND);
    assert_eq!(
        (d[1].state, d[1].producer_id, d[1].partitions.len()),
        (TxnState::Ongoing, busy_pid, 1)
    );
    assert_eq!(h.add("idle", pid, epoch, &[("a", 0)]), ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    // Nothing expired survives a reload either.
    assert!(h.reload().txn("idle").is_none());
}
