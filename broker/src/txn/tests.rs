//! Tests of the state machine: every transition, fencing, timeouts, crash recovery of
//! Prepare* states, bounds. Here the harness (a machine whose writes the test completes)
//! and the tests of loading and failed writes; the others by concern, as the machine is
//! split: `init_producer_id`, `additions`, `completion`, `expiry`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use sluice_protocol::error_code::ErrorCode;

use super::index::TxnIndex;
use super::metadata::{PendingOffset, TxnState};
use super::request::*;
use super::state::*;
use crate::group::types::TopicPartition;

mod additions;
mod completion;
mod expiry;
mod init_producer_id;

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
