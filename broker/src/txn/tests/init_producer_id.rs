//! Tests of InitProducerId: ids and epochs, KIP-360's checks, the rotation of an
//! exhausted epoch, the fence of a zombie.

use super::*;

#[test]
fn init_hands_out_an_id_and_bumps_the_epoch_on_every_re_init() {
    let mut h = H::new();
    let (pid, epoch) = h.init(T).unwrap();
    assert_eq!((pid, epoch), (1000, 0));
    assert_eq!(h.init(T).unwrap(), (1000, 1));
    assert_eq!(h.init(T).unwrap(), (1000, 2));
    assert_eq!(h.state(T), TxnState::Empty);
    assert_eq!(h.init("other").unwrap(), (1001, 0));
}

#[test]
fn init_refuses_a_bad_timeout_and_an_empty_id() {
    let mut h = H::new();
    assert_eq!(h.init_with(T, 60_001, None), Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT));
    assert_eq!(h.init_with(T, 0, None), Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT));
    assert_eq!(h.init_with("", 1000, None), Err(ErrorCode::INVALID_REQUEST));
    assert!(h.c.txn(T).is_none(), "a refused init keeps nothing");
    assert!(h.log.is_empty());
}

#[test]
fn kip_360_checks_the_producers_id_and_epoch() {
    let mut h = H::new();
    let (pid, _) = h.init(T).unwrap();
    h.init(T).unwrap(); // epoch 1
    assert_eq!(h.init_with(T, 1000, Some((pid, 1))), Ok((pid, 2)));
    // The answer was lost and the producer retries with the epoch it had: the same.
    assert_eq!(h.init_with(T, 1000, Some((pid, 1))), Ok((pid, 2)));
    assert_eq!(h.init_with(T, 1000, Some((pid, 0))), Err(ErrorCode::PRODUCER_FENCED));
    assert_eq!(h.init_with(T, 1000, Some((pid + 7, 2))), Err(ErrorCode::PRODUCER_FENCED));
}

#[test]
fn an_exhausted_epoch_rotates_the_producer_id() {
    let mut h = H::new();
    let (pid, _) = h.init(T).unwrap();
    // Bring the epoch to the last usable one through the log, as a restart would.
    let mut t = h.c.txn(T).unwrap().clone();
    t.producer_epoch = i16::MAX - 1;
    let key = crate::txn::records::encode_key(T);
    let value = crate::txn::records::encode_value(&crate::txn::records::TxnValue::of(&t));
    h.c.load(&key, Some(&value)).unwrap();
    let (new_pid, epoch) = h.init_with(T, 1000, Some((pid, i16::MAX - 1))).unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(epoch, 0);
    let t = h.c.txn(T).unwrap();
    assert_eq!((t.prev_producer_id, t.last_producer_epoch), (pid, i16::MAX - 1));
    // A retry from the old id with its exhausted epoch is still recognised.
    assert!(h.init_with(T, 1000, Some((pid, i16::MAX - 1))).is_ok());
}

#[test]
fn a_re_init_fences_the_zombies_ongoing_transaction() {
    let mut h = H::new();
    let (pid, epoch) = h.init(T).unwrap();
    h.add(T, pid, epoch, &[("a", 0)]);
    assert_eq!(h.init(T), Err(ErrorCode::CONCURRENT_TRANSACTIONS));
    let t = h.c.txn(T).unwrap();
    assert_eq!((t.state, t.producer_epoch), (TxnState::PrepareAbort, epoch + 1));
    let c = h.completions.last().unwrap().clone();
    assert!(!c.commit);
    assert_eq!(c.producer_epoch, epoch + 1, "the abort marker carries the bumped epoch");
    // The zombie is fenced (its add once the abort is done); the new producer waits for
    // the abort.
    let add = TxnRequest::AddPartitions {
        txn_id: T.into(),
        producer_id: pid,
        epoch,
        partitions: vec![tp("a", 1)],
        verify_only: false,
    };
    let (zombie, none) = h.ask_held(add);
    assert!(none.is_empty() && h.reply_of(zombie).is_none());
    assert_eq!(h.end(T, pid, epoch, true), ErrorCode::PRODUCER_FENCED);
    assert_eq!(h.init(T), Err(ErrorCode::CONCURRENT_TRANSACTIONS));
    h.complete_all();
    assert_eq!(h.state(T), TxnState::CompleteAbort);
    assert_eq!(h.reply_of(zombie), Some(TxnReply::AddPartitions(ErrorCode::PRODUCER_FENCED)));
    assert_eq!(h.init(T), Ok((pid, epoch + 2)));
}
