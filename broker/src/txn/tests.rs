//! Tests of the state machine: every transition, fencing, timeouts, crash recovery of
//! Prepare* states, bounds.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use sluice_protocol::error_code::ErrorCode;

use super::request::*;
use super::state::*;
use super::TxnIndex;

#[derive(Debug, Default)]
struct Counter(AtomicI64);

impl ProducerIdSource for Counter {
    fn next_id(&self) -> Result<i64, ErrorCode> {
        Ok(self.0.fetch_add(1, Ordering::Relaxed) + 1000)
    }
}

/// A coordinator whose writes the test completes, with every record kept as the log.
struct H {
    c: TxnMachine,
    token: Token,
    now: i64,
    log: Vec<LogRecord>,
    completions: Vec<Completion>,
    replies: Vec<(Token, TxnReply)>,
    index: TxnIndex,
}

const T: &str = "tx";

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition { topic: Arc::from(topic), partition }
}

impl H {
    fn new() -> H {
        H::with(TxnConfig { max_timeout_ms: 60_000, ..TxnConfig::default() })
    }

    fn with(config: TxnConfig) -> H {
        let mut c = TxnMachine::new(config, Arc::new(Counter::default()));
        let mut h = H {
            c: TxnMachine::new(TxnConfig::default(), Arc::new(Counter::default())),
            token: 0,
            now: 1_000_000,
            log: Vec::new(),
            completions: Vec::new(),
            replies: Vec::new(),
            index: TxnIndex::default(),
        };
        let out = c.finish_loading(h.now);
        h.c = c;
        h.absorb(out, true);
        h
    }

    /// Carries out outputs; writes complete at once when `auto` is set.
    fn absorb(&mut self, outputs: Vec<Output>, auto: bool) -> Vec<WriteId> {
        let mut pending = Vec::new();
        for o in outputs {
            match o {
                Output::Reply { token, reply } => self.replies.push((token, reply)),
                Output::Write { id, record } => {
                    self.log.push(record);
                    pending.push(id);
                }
                Output::Complete(c) => self.completions.push(c),
                Output::SetTimer { .. } => {}
                Output::Index(u) => self.index.apply(u),
            }
        }
        if auto {
            for id in pending.drain(..) {
                let out = self.c.step(Input::Written { id, result: Ok(()) }, self.now);
                let more = self.absorb(out, true);
                assert!(more.is_empty());
            }
        }
        pending
    }

    fn ask(&mut self, r: TxnRequest) -> TxnReply {
        self.token += 1;
        let token = self.token;
        let out = self.c.step(Input::Request { token, request: r }, self.now);
        self.absorb(out, true);
        let i = self.replies.iter().position(|(t, _)| *t == token).expect("a reply");
        self.replies.remove(i).1
    }

    /// Sends without completing its write; returns the write ids.
    fn ask_held(&mut self, r: TxnRequest) -> (Token, Vec<WriteId>) {
        self.token += 1;
        let out = self.c.step(Input::Request { token: self.token, request: r }, self.now);
        (self.token, self.absorb(out, false))
    }

    fn reply_of(&mut self, token: Token) -> Option<TxnReply> {
        let i = self.replies.iter().position(|(t, _)| *t == token)?;
        Some(self.replies.remove(i).1)
    }

    fn init(&mut self, id: &str) -> Result<(i64, i16), ErrorCode> {
        self.init_with(id, 10_000, None)
    }

    fn init_with(
        &mut self,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ErrorCode> {
        match self.ask(TxnRequest::InitProducerId { txn_id: id.into(), timeout_ms, expected }) {
            TxnReply::InitProducerId(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn add(&mut self, id: &str, pid: i64, epoch: i16, parts: &[(&str, i32)]) -> ErrorCode {
        let partitions = parts.iter().map(|(t, p)| tp(t, *p)).collect();
        let r = TxnRequest::AddPartitions {
            txn_id: id.into(),
            producer_id: pid,
            epoch,
            partitions,
            verify_only: false,
        };
        match self.ask(r) {
            TxnReply::AddPartitions(e) => e,
            other => panic!("{other:?}"),
        }
    }

    fn end(&mut self, id: &str, pid: i64, epoch: i16, commit: bool) -> ErrorCode {
        match self.ask(TxnRequest::EndTxn { txn_id: id.into(), producer_id: pid, epoch, commit }) {
            TxnReply::Error(e) => e,
            other => panic!("{other:?}"),
        }
    }

    /// Reports every completion done.
    fn complete_all(&mut self) {
        for c in std::mem::take(&mut self.completions) {
            let input = Input::Completed {
                txn_id: c.txn_id,
                producer_id: c.producer_id,
                producer_epoch: c.producer_epoch,
            };
            let out = self.c.step(input, self.now);
            self.absorb(out, true);
        }
    }

    fn state(&self, id: &str) -> TxnState {
        self.c.txn(id).unwrap().state
    }

    fn reload(&self) -> TxnMachine {
        let mut c = TxnMachine::new(TxnConfig::default(), Arc::new(Counter::default()));
        for r in &self.log {
            c.load(&r.key, r.value.as_deref()).unwrap();
        }
        c
    }
}

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
    let key = super::records::encode_key(T);
    let value = super::records::encode_value(&super::records::TxnValue::of(&t));
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

#[test]
fn loading_answers_load_in_progress() {
    let mut c = TxnMachine::new(TxnConfig::default(), Arc::new(Counter::default()));
    let r = TxnRequest::InitProducerId { txn_id: T.into(), timeout_ms: 1000, expected: None };
    let out = c.step(Input::Request { token: 1, request: r }, 0);
    assert_eq!(
        out,
        vec![Output::Reply {
            token: 1,
            reply: TxnReply::InitProducerId(Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS))
        }]
    );
}

#[test]
fn a_failed_write_changes_nothing_and_is_an_outage_to_the_client() {
    let mut h = H::new();
    let (pid, epoch) = h.init(T).unwrap();
    let (token, writes) = h.ask_held(TxnRequest::AddPartitions {
        txn_id: T.into(),
        producer_id: pid,
        epoch,
        partitions: vec![tp("a", 0)],
        verify_only: false,
    });
    let out = h
        .c
        .step(Input::Written { id: writes[0], result: Err(ErrorCode::KAFKA_STORAGE_ERROR) }, h.now);
    h.absorb(out, true);
    assert_eq!(
        h.reply_of(token),
        Some(TxnReply::AddPartitions(ErrorCode::COORDINATOR_NOT_AVAILABLE))
    );
    assert_eq!(h.state(T), TxnState::Empty);
    // A fresh id whose first write failed is not kept.
    let (token, writes) = h.ask_held(TxnRequest::InitProducerId {
        txn_id: "new".into(),
        timeout_ms: 1000,
        expected: None,
    });
    let out = h
        .c
        .step(Input::Written { id: writes[0], result: Err(ErrorCode::KAFKA_STORAGE_ERROR) }, h.now);
    h.absorb(out, true);
    assert_eq!(
        h.reply_of(token),
        Some(TxnReply::InitProducerId(Err(ErrorCode::COORDINATOR_NOT_AVAILABLE)))
    );
    assert!(h.c.txn("new").is_none());
    let fresh = 1001;
    assert_eq!(
        h.index.verify_partition(fresh, 0, "a", 0),
        Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING),
        "nor is its producer id"
    );
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
