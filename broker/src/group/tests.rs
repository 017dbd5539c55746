//! Deterministic tests of the coordinator state machine: a fake clock, timers fired by
//! hand, writes completed (or failed) by hand. No I/O, no threads.
//!
//! This file holds the [`Harness`] and the request builders; the tests are split by
//! concern as the machine is: [`rebalance`], [`assignment`], [`liveness`], [`offsets`],
//! [`lifecycle`] (loading, snapshots, shutdown) and [`hostile`] (requests built to cost
//! the most).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use sluice_protocol::consumer_protocol::Subscription;
use sluice_protocol::error_code::ErrorCode;

use super::request::*;
use super::state::*;
use super::types::*;

mod assignment;
mod hostile;
mod lifecycle;
mod liveness;
mod offsets;
mod rebalance;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

/// Drives a [`GroupMachine`] like the driver does, with a clock the test moves.
struct Harness {
    c: GroupMachine,
    now: i64,
    next_token: Token,
    timers: BTreeMap<TimerKey, i64>,
    replies: HashMap<Token, GroupReply>,
    writes: Vec<(WriteId, Vec<LogRecord>)>,
    /// Records of completed writes, in log order.
    log: Vec<LogRecord>,
    /// Complete every write as soon as it is issued.
    auto_write: bool,
}

impl Harness {
    fn new(config: GroupConfig) -> Harness {
        let mut c = GroupMachine::new(config, 7);
        let outs = c.finish_loading(0);
        let mut h = Harness {
            c,
            now: 0,
            next_token: 1,
            timers: BTreeMap::new(),
            replies: HashMap::new(),
            writes: Vec::new(),
            log: Vec::new(),
            auto_write: true,
        };
        h.absorb(outs);
        h
    }

    fn default() -> Harness {
        Harness::new(GroupConfig { initial_rebalance_delay_ms: 0, ..GroupConfig::default() })
    }

    fn absorb(&mut self, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Reply { token: t, reply: r } => {
                    assert!(self.replies.insert(t, r).is_none(), "token {t} answered twice");
                }
                Output::SetTimer { key: k, at } => {
                    self.timers.insert(k, at);
                }
                Output::Write { id, records } => self.writes.push((id, records)),
            }
        }
        if self.auto_write {
            self.complete_writes(Ok(()));
        }
    }

    fn step(&mut self, input: Input) {
        let outs = self.c.step(input, self.now);
        self.absorb(outs);
    }

    fn send(&mut self, request: GroupRequest) -> Token {
        let t = self.next_token;
        self.next_token += 1;
        self.step(Input::Request { token: t, request });
        t
    }

    fn complete_writes(&mut self, result: Result<(), ErrorCode>) {
        while !self.writes.is_empty() {
            let (id, records) = self.writes.remove(0);
            if result.is_ok() {
                self.log.extend(records);
            }
            self.step(Input::Written { id, result });
        }
    }

    /// Moves the clock, firing due timers in deadline order.
    fn advance(&mut self, ms: i64) {
        let end = self.now + ms;
        loop {
            let due = self
                .timers
                .iter()
                .filter(|(_, &at)| at <= end)
                .min_by_key(|(_, &at)| at)
                .map(|(k, &at)| (k.clone(), at));
            let Some((key, at)) = due else { break };
            self.timers.remove(&key);
            self.now = self.now.max(at);
            self.step(Input::Timer(key));
        }
        self.now = end;
    }

    fn take(&mut self, t: Token) -> Option<GroupReply> {
        self.replies.remove(&t)
    }

    fn join_result(&mut self, t: Token) -> JoinResult {
        match self.take(t) {
            Some(GroupReply::Join(r)) => r,
            other => panic!("token {t}: expected a JoinGroup answer, got {other:?}"),
        }
    }

    fn sync_result(&mut self, t: Token) -> SyncResult {
        match self.take(t) {
            Some(GroupReply::Sync(r)) => r,
            other => panic!("token {t}: expected a SyncGroup answer, got {other:?}"),
        }
    }

    fn join(&mut self, group: &str, member: &str, v4: bool) -> Token {
        self.send(GroupRequest::Join(join_request(group, member, v4, &["range"])))
    }

    /// A v4+ first join: MEMBER_ID_REQUIRED, then the join with the id. Returns the token
    /// of the second join and the member id.
    fn join_new(&mut self, group: &str) -> (Token, String) {
        let t = self.join(group, "", true);
        let r = self.join_result(t);
        assert_eq!(r.error, ErrorCode::MEMBER_ID_REQUIRED);
        assert!(r.member_id.starts_with("client-"), "{}", r.member_id);
        let t = self.join(group, &r.member_id, true);
        (t, r.member_id)
    }

    fn sync(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        assignments: &[(&str, &[u8])],
    ) -> Token {
        self.send(GroupRequest::Sync(SyncRequest {
            group_id: group.into(),
            generation,
            member_id: member.into(),
            instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: None,
            assignments: assignments
                .iter()
                .map(|(m, a)| ((*m).to_owned(), Bytes::copy_from_slice(a)))
                .collect(),
        }))
    }

    fn heartbeat(&mut self, group: &str, member: &str, generation: i32) -> ErrorCode {
        let t = self.send(GroupRequest::Heartbeat(HeartbeatRequest {
            group_id: group.into(),
            generation,
            member_id: member.into(),
            instance_id: None,
        }));
        match self.take(t) {
            Some(GroupReply::Heartbeat(e)) => e,
            other => panic!("expected a heartbeat answer, got {other:?}"),
        }
    }

    fn commit(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        offsets: &[(&str, i32, i64)],
    ) -> Token {
        self.send(GroupRequest::Commit(CommitRequest {
            group_id: group.into(),
            generation,
            member_id: member.into(),
            instance_id: None,
            retention_ms: -1,
            offsets: offsets
                .iter()
                .map(|(t, p, o)| OffsetToCommit {
                    partition: tp(t, *p),
                    offset: *o,
                    leader_epoch: 3,
                    commit_timestamp: -1,
                    metadata: Some("meta".into()),
                })
                .collect(),
        }))
    }

    fn commit_errors(&mut self, t: Token) -> Vec<ErrorCode> {
        match self.take(t) {
            Some(GroupReply::Commit(r)) => r,
            other => panic!("expected a commit answer, got {other:?}"),
        }
    }

    fn fetch(&mut self, group: &str, partitions: Option<Vec<TopicPartition>>) -> GroupOffsets {
        let t = self.send(GroupRequest::FetchOffsets(vec![(group.into(), partitions)]));
        match self.take(t) {
            Some(GroupReply::FetchOffsets(mut g)) => g.remove(0),
            other => panic!("expected a fetch answer, got {other:?}"),
        }
    }

    fn state(&self, group: &str) -> GroupState {
        self.c.group(group).map_or(GroupState::Dead, |g| g.state)
    }

    /// Two members through a full rebalance into Stable; returns (leader, follower, gen).
    fn stable_pair(&mut self, group: &str) -> (String, String, i32) {
        let (ta, a) = self.join_new(group);
        self.advance(0);
        let ra = self.join_result(ta);
        let ga = ra.generation;
        let ts = self.sync(group, &a, ga, &[(&a, b"A")]);
        assert_eq!(self.sync_result(ts).error, ErrorCode::NONE);
        let (tb, b) = self.join_new(group);
        let ta = self.join(group, &a, true);
        let (ra, rb) = (self.join_result(ta), self.join_result(tb));
        assert_eq!(ra.generation, rb.generation);
        let tf = self.sync(group, &b, rb.generation, &[]);
        let tl = self.sync(group, &a, ra.generation, &[(&a, b"A2"), (&b, b"B2")]);
        assert_eq!(self.sync_result(tl).assignment, Bytes::from_static(b"A2"));
        assert_eq!(self.sync_result(tf).assignment, Bytes::from_static(b"B2"));
        assert_eq!(self.state(group), GroupState::Stable);
        (a, b, ra.generation)
    }
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition { topic: topic.into(), partition }
}

/// A `ConsumerProtocolSubscription` v0 for these topics.
fn subscription(topics: &[&str]) -> Bytes {
    let topics = topics.iter().map(|t| (*t).to_owned()).collect();
    Subscription { topics, ..Subscription::default() }.encode(0).expect("a short subscription")
}

fn join_request(group: &str, member: &str, v4: bool, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        group_id: group.into(),
        member_id: member.into(),
        instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| Protocol { name: (*p).into(), metadata: subscription(&["t"]) })
            .collect(),
        require_known_member_id: v4,
        supports_skip_assignment: false,
    }
}
