//! Deterministic tests of the coordinator state machine: a fake clock, timers fired by
//! hand, writes completed (or failed) by hand. No I/O, no threads.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use sluice_protocol::error_code::ErrorCode;

use super::request::*;
use super::state::*;
use super::types::*;

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
    let mut b = vec![0, 0];
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.into()
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

#[test]
fn first_join_v4_requires_a_member_id_and_the_first_member_leads() {
    let mut h = Harness::default();
    let (t, id) = h.join_new("g");
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    assert!(h.take(t).is_none(), "the join waits for the initial delay");
    h.advance(0);
    let r = h.join_result(t);
    assert_eq!(r.error, ErrorCode::NONE);
    assert_eq!(
        (r.generation, r.leader.as_str(), r.member_id.as_str()),
        (1, id.as_str(), id.as_str())
    );
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1, "the leader gets the member list");
    assert_eq!(r.members[0].metadata, subscription(&["t"]));
    assert_eq!(h.state("g"), GroupState::CompletingRebalance);
}

#[test]
fn join_before_v4_gets_its_member_id_in_the_same_round() {
    let mut h = Harness::default();
    let t = h.join("g", "", false);
    h.advance(0);
    let r = h.join_result(t);
    assert_eq!(r.error, ErrorCode::NONE);
    assert!(r.member_id.starts_with("client-"));
    assert_eq!(r.leader, r.member_id);
}

#[test]
fn followers_wait_for_the_leaders_sync_and_get_exactly_their_bytes() {
    let mut h = Harness::default();
    let (ta, a) = h.join_new("g");
    let (tb, b) = h.join_new("g");
    h.advance(0);
    let (ra, rb) = (h.join_result(ta), h.join_result(tb));
    assert_eq!(ra.leader, a);
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty(), "followers get no member list");
    let tf = h.sync("g", &b, rb.generation, &[]);
    assert!(h.take(tf).is_none(), "a follower waits for the leader");
    let binary: &[u8] = &[0, 1, 0xff, 0, 0x80];
    let tl = h.sync("g", &a, ra.generation, &[(&a, b"for a"), (&b, binary)]);
    assert_eq!(h.sync_result(tf).assignment.as_ref(), binary);
    let sl = h.sync_result(tl);
    assert_eq!(sl.assignment.as_ref(), b"for a");
    assert_eq!(sl.protocol_name.as_deref(), Some("range"));
    assert_eq!(h.state("g"), GroupState::Stable);
    // A member that syncs again in Stable gets its assignment at once.
    let again = h.sync("g", &b, rb.generation, &[]);
    assert_eq!(h.sync_result(again).assignment.as_ref(), binary);
}

#[test]
fn the_assignment_is_given_only_once_it_is_written() {
    let mut h = Harness::default();
    let (ta, a) = h.join_new("g");
    h.advance(0);
    let gen = h.join_result(ta).generation;
    h.auto_write = false;
    let t = h.sync("g", &a, gen, &[(&a, b"x")]);
    assert!(h.take(t).is_none());
    assert_eq!(h.state("g"), GroupState::CompletingRebalance);
    h.complete_writes(Ok(()));
    assert_eq!(h.sync_result(t).assignment.as_ref(), b"x");
    assert_eq!(h.state("g"), GroupState::Stable);
}

#[test]
fn a_failed_assignment_write_fails_the_syncs_and_rebalances() {
    let mut h = Harness::default();
    let (ta, a) = h.join_new("g");
    h.advance(0);
    let gen = h.join_result(ta).generation;
    h.auto_write = false;
    let t = h.sync("g", &a, gen, &[(&a, b"x")]);
    h.complete_writes(Err(ErrorCode::KAFKA_STORAGE_ERROR));
    assert_eq!(h.sync_result(t).error, ErrorCode::NOT_COORDINATOR);
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
}

#[test]
fn a_new_member_rebalances_a_stable_group() {
    let mut h = Harness::default();
    let (a, b, gen) = h.stable_pair("g");
    assert_eq!(gen, 2);
    let (tc, c) = h.join_new("g");
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat("g", &a, gen), ErrorCode::REBALANCE_IN_PROGRESS);
    let ta = h.join("g", &a, true);
    assert!(h.take(tc).is_none(), "b has not rejoined yet");
    let tb = h.join("g", &b, true);
    let (ra, rb, rc) = (h.join_result(ta), h.join_result(tb), h.join_result(tc));
    assert_eq!((ra.generation, rb.generation, rc.generation), (3, 3, 3));
    assert_eq!(ra.leader, a, "the leader stays the leader");
    assert_eq!(rc.member_id, c);
    assert_eq!(h.heartbeat("g", &b, 3), ErrorCode::NONE, "heartbeats between join and sync");
    assert_eq!(h.heartbeat("g", &b, 2), ErrorCode::ILLEGAL_GENERATION);
}

#[test]
fn the_rebalance_timeout_ends_the_join_phase_without_silent_members() {
    let mut h = Harness::default();
    let (a, b, gen) = h.stable_pair("g");
    // a rejoins (as a leader does when metadata changes); b heartbeats but never rejoins.
    let ta = h.join("g", &a, true);
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    for _ in 0..5 {
        h.advance(5000);
        assert_eq!(h.heartbeat("g", &b, gen), ErrorCode::REBALANCE_IN_PROGRESS);
    }
    h.advance(i64::from(REBALANCE) - 25_001);
    assert!(h.take(ta).is_none());
    h.advance(1);
    let r = h.join_result(ta);
    assert_eq!(r.generation, gen + 1);
    assert_eq!(r.members.len(), 1, "b was dropped");
    assert_eq!(h.heartbeat("g", &b, gen), ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_silent_member_is_expelled_after_its_session_timeout() {
    let mut h = Harness::default();
    let (a, b, gen) = h.stable_pair("g");
    h.advance(i64::from(SESSION) / 2);
    assert_eq!(h.heartbeat("g", &a, gen), ErrorCode::NONE);
    h.advance(i64::from(SESSION) / 2 - 1);
    assert_eq!(h.heartbeat("g", &a, gen), ErrorCode::NONE);
    assert_eq!(h.state("g"), GroupState::Stable);
    h.advance(1);
    // b never heartbeat: it is gone, and a learns of the rebalance.
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat("g", &b, gen), ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(h.heartbeat("g", &a, gen), ErrorCode::REBALANCE_IN_PROGRESS);
    let t = h.join("g", &a, true);
    let r = h.join_result(t);
    assert_eq!((r.generation, r.members.len()), (gen + 1, 1));
}

#[test]
fn the_initial_delay_extends_while_members_join_up_to_the_rebalance_timeout() {
    let mut h =
        Harness::new(GroupConfig { initial_rebalance_delay_ms: 3000, ..Default::default() });
    let (ta, _) = h.join_new("g");
    h.advance(2000);
    let (tb, _) = h.join_new("g");
    h.advance(1000);
    assert!(h.take(ta).is_none(), "a member arrived during the delay: it is extended");
    h.advance(2999);
    assert!(h.take(ta).is_none());
    h.advance(1);
    assert_eq!(h.join_result(ta).members.len(), 2);
    assert_eq!(h.join_result(tb).generation, 1);

    // A steady stream of joiners cannot hold the group past the rebalance timeout.
    let mut h =
        Harness::new(GroupConfig { initial_rebalance_delay_ms: 3000, ..Default::default() });
    let (first, _) = h.join_new("g2");
    let mut waited = 0;
    while h.take(first).is_none() {
        h.join_new("g2");
        h.advance(1000);
        waited += 1000;
        assert!(waited <= i64::from(REBALANCE) + 3000, "waited {waited} ms");
    }
    assert!(waited >= i64::from(REBALANCE) - 3000, "ended after {waited} ms");
}

#[test]
fn leaving_members_rebalance_and_the_last_one_empties_the_group() {
    let mut h = Harness::default();
    let (a, b, gen) = h.stable_pair("g");
    let t = h.send(GroupRequest::Leave {
        group: "g".into(),
        members: vec![
            LeavingMember { member_id: b.clone(), instance_id: None },
            LeavingMember { member_id: "nobody".into(), instance_id: None },
        ],
    });
    let Some(GroupReply::Leave(r)) = h.take(t) else { panic!() };
    assert_eq!(r.error, ErrorCode::NONE);
    assert_eq!(r.members[0].1, ErrorCode::NONE);
    assert_eq!(r.members[1].1, ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    let ta = h.join("g", &a, true);
    assert_eq!(h.join_result(ta).generation, gen + 1);
    let t = h.send(GroupRequest::Leave {
        group: "g".into(),
        members: vec![LeavingMember { member_id: a, instance_id: None }],
    });
    assert!(matches!(h.take(t), Some(GroupReply::Leave(_))));
    assert_eq!(h.state("g"), GroupState::Empty);
    let g = h.c.group("g").unwrap();
    assert_eq!(g.generation, gen + 2);
    assert!(g.persisted.is_some(), "the empty group was written");
}

#[test]
fn a_static_member_rejoining_takes_over_and_fences_its_old_id() {
    let mut h = Harness::default();
    let mut req = join_request("g", "", true, &["range"]);
    req.instance_id = Some("inst-1".into());
    let t = h.send(GroupRequest::Join(req.clone()));
    h.advance(0);
    let r = h.join_result(t);
    assert_eq!(r.error, ErrorCode::NONE, "static members skip MEMBER_ID_REQUIRED");
    assert!(r.member_id.starts_with("inst-1-"));
    let old = r.member_id.clone();
    let ts = h.sync("g", &old, r.generation, &[(&old, b"mine")]);
    assert_eq!(h.sync_result(ts).assignment.as_ref(), b"mine");
    // The instance restarts and joins without a member id: no rebalance.
    let t = h.send(GroupRequest::Join(req));
    let r2 = h.join_result(t);
    assert_eq!(r2.error, ErrorCode::NONE);
    assert_ne!(r2.member_id, old);
    assert_eq!(r2.generation, r.generation);
    assert_eq!(r2.leader, old, "before v9 the old leader id is named so no one reassigns");
    assert_eq!(h.state("g"), GroupState::Stable);
    let t = h.send(GroupRequest::Heartbeat(HeartbeatRequest {
        group_id: "g".into(),
        generation: r.generation,
        member_id: old,
        instance_id: Some("inst-1".into()),
    }));
    assert_eq!(h.take(t), Some(GroupReply::Heartbeat(ErrorCode::FENCED_INSTANCE_ID)));
    let ts = h.sync("g", &r2.member_id, r.generation, &[]);
    assert_eq!(h.sync_result(ts).assignment.as_ref(), b"mine", "the assignment carries over");
}

#[test]
fn protocols_must_be_consistent() {
    let mut h = Harness::default();
    let t = h.send(GroupRequest::Join(join_request("g", "", false, &["range", "roundrobin"])));
    h.advance(0);
    let a = h.join_result(t);
    let t = h.send(GroupRequest::Join(join_request("g", "", false, &["sticky"])));
    assert_eq!(h.join_result(t).error, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    let mut other = join_request("g", "", false, &["range"]);
    other.protocol_type = "connect".into();
    let t = h.send(GroupRequest::Join(other));
    assert_eq!(h.join_result(t).error, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    let t = h.send(GroupRequest::Join(join_request("g", "", false, &["roundrobin", "range"])));
    let ta = h.send(GroupRequest::Join(join_request(
        "g",
        &a.member_id,
        false,
        &["range", "roundrobin"],
    )));
    // One vote each: the tie goes to the leader's preference.
    assert_eq!(h.join_result(ta).protocol_name.as_deref(), Some("range"));
    assert_eq!(h.join_result(t).error, ErrorCode::NONE);
}

#[test]
fn requests_are_checked_against_the_member_and_generation() {
    let mut h = Harness::default();
    let (a, _, gen) = h.stable_pair("g");
    assert_eq!(h.heartbeat("g", "stranger", gen), ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(h.heartbeat("nogroup", &a, gen), ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(h.heartbeat("", &a, gen), ErrorCode::INVALID_GROUP_ID);
    let t = h.sync("g", &a, gen + 5, &[]);
    assert_eq!(h.sync_result(t).error, ErrorCode::ILLEGAL_GENERATION);
    let t = h.commit("g", &a, gen - 1, &[("t", 0, 1)]);
    assert_eq!(h.commit_errors(t), [ErrorCode::ILLEGAL_GENERATION]);
    let t = h.commit("g", "", -1, &[("t", 0, 1)]);
    assert_eq!(
        h.commit_errors(t),
        [ErrorCode::UNKNOWN_MEMBER_ID],
        "only members commit to an active group"
    );
    let t = h.join("g", "stranger", true);
    assert_eq!(h.join_result(t).error, ErrorCode::UNKNOWN_MEMBER_ID);
    let mut bad = join_request("g", "", true, &["range"]);
    bad.session_timeout_ms = 10;
    let t = h.send(GroupRequest::Join(bad));
    assert_eq!(h.join_result(t).error, ErrorCode::INVALID_SESSION_TIMEOUT);
}

#[test]
fn commits_are_visible_once_written_and_fetched_with_metadata_and_epoch() {
    let mut h = Harness::default();
    let (a, _, gen) = h.stable_pair("g");
    h.auto_write = false;
    let t = h.commit("g", &a, gen, &[("t", 0, 10), ("t", 1, 20)]);
    assert!(h.take(t).is_none());
    assert_eq!(h.fetch("g", Some(vec![tp("t", 0)])).offsets[0].1, None, "not yet written");
    h.complete_writes(Ok(()));
    assert_eq!(h.commit_errors(t), [ErrorCode::NONE, ErrorCode::NONE]);
    let all = h.fetch("g", None);
    assert_eq!(all.offsets.len(), 2);
    let o = all.offsets[1].1.clone().unwrap();
    assert_eq!((o.offset, o.leader_epoch, o.metadata.as_str()), (20, 3, "meta"));
    let t = h.commit("g", &a, gen, &[("t", 0, 11)]);
    h.complete_writes(Err(ErrorCode::KAFKA_STORAGE_ERROR));
    assert_eq!(h.commit_errors(t), [ErrorCode::NOT_COORDINATOR]);
    assert_eq!(h.fetch("g", Some(vec![tp("t", 0)])).offsets[0].1.as_ref().unwrap().offset, 10);
}

#[test]
fn simple_consumers_commit_with_generation_minus_one() {
    let mut h = Harness::default();
    let mut r = CommitRequest {
        group_id: "simple".into(),
        generation: -1,
        member_id: String::new(),
        instance_id: None,
        retention_ms: -1,
        offsets: vec![OffsetToCommit {
            partition: tp("t", 0),
            offset: 5,
            leader_epoch: -1,
            commit_timestamp: -1,
            metadata: None,
        }],
    };
    r.offsets.push(OffsetToCommit {
        partition: tp("t", 1),
        offset: 6,
        leader_epoch: -1,
        commit_timestamp: -1,
        metadata: Some("x".repeat(5000)),
    });
    let t = h.send(GroupRequest::Commit(r));
    assert_eq!(h.commit_errors(t), [ErrorCode::NONE, ErrorCode::OFFSET_METADATA_TOO_LARGE]);
    assert_eq!(h.state("simple"), GroupState::Empty);
    let got = h.fetch("simple", Some(vec![tp("t", 0), tp("t", 1)]));
    assert_eq!(got.offsets[0].1.as_ref().map(|o| o.offset), Some(5));
    assert_eq!(got.offsets[1].1, None);
    let t = h.commit("unknown", "m", 3, &[("t", 0, 1)]);
    assert_eq!(h.commit_errors(t), [ErrorCode::ILLEGAL_GENERATION]);
}

#[test]
fn commits_during_completing_rebalance_are_refused() {
    let mut h = Harness::default();
    let (ta, a) = h.join_new("g");
    h.advance(0);
    let gen = h.join_result(ta).generation;
    let t = h.commit("g", &a, gen, &[("t", 0, 1)]);
    assert_eq!(h.commit_errors(t), [ErrorCode::REBALANCE_IN_PROGRESS]);
}

#[test]
fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let mut h = Harness::default();
    let (ta, a) = h.join_new("g");
    let (tb, b) = h.join_new("g");
    h.advance(0);
    let gen = h.join_result(ta).generation;
    h.join_result(tb);
    let ts = h.sync("g", &a, gen, &[(&a, b"a"), (&b, b"b")]);
    h.sync_result(ts);
    for _ in 0..5 {
        h.advance(5000);
        assert_eq!(h.heartbeat("g", &a, gen), ErrorCode::NONE);
        assert_eq!(h.heartbeat("g", &b, gen), ErrorCode::NONE);
    }
    h.advance(i64::from(REBALANCE) - 25_000);
    // b heartbeats but never sent SyncGroup: out after the rebalance timeout.
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    assert_eq!(h.heartbeat("g", &b, gen), ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_pending_member_that_never_returns_does_not_block_the_join() {
    let mut h = Harness::default();
    let (a, b, _) = h.stable_pair("g");
    let t = h.send(GroupRequest::Leave {
        group: "g".into(),
        members: vec![LeavingMember { member_id: b, instance_id: None }],
    });
    h.take(t);
    let ta = h.join("g", &a, true);
    let gen = h.join_result(ta).generation;
    assert_eq!(gen, 3);
    let ts = h.sync("g", &a, gen, &[(&a, b"all")]);
    h.sync_result(ts);
    let t = h.join("g", "", true);
    assert_eq!(h.join_result(t).error, ErrorCode::MEMBER_ID_REQUIRED);
    let ta = h.join("g", &a, true);
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    h.advance(i64::from(SESSION) - 1);
    assert!(h.take(ta).is_none(), "the join phase waits for the pending member");
    h.advance(1);
    assert_eq!(h.join_result(ta).generation, gen + 1, "the pending id expired: done");
}

#[test]
fn loading_answers_as_kafka_does_then_restores_groups_and_offsets() {
    let mut h = Harness::default();
    let (a, b, gen) = h.stable_pair("g");
    let t = h.commit("g", &a, gen, &[("t", 0, 42)]);
    h.commit_errors(t);
    let t = h.commit("simple", "", -1, &[("u", 3, 7)]);
    h.commit_errors(t);

    let mut c = GroupMachine::new(GroupConfig::default(), 1);
    let answers = c.step(
        Input::Request {
            token: 1,
            request: GroupRequest::Join(join_request("g", "", true, &["range"])),
        },
        0,
    );
    assert!(
        matches!(&answers[0], Output::Reply { token: 1, reply: GroupReply::Join(r) } if r.error == ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
    );
    let sync = SyncRequest {
        group_id: "g".into(),
        generation: gen,
        member_id: a.clone(),
        instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: vec![],
    };
    let answers = c.step(Input::Request { token: 2, request: GroupRequest::Sync(sync) }, 0);
    assert!(
        matches!(&answers[0], Output::Reply { token: 2, reply: GroupReply::Sync(r) } if r.error == ErrorCode::REBALANCE_IN_PROGRESS)
    );
    for r in &h.log {
        c.load(&r.key, r.value.as_deref()).unwrap();
    }
    let mut h2 = Harness { c, ..Harness::default() };
    let outs = h2.c.finish_loading(h2.now);
    h2.absorb(outs);
    assert_eq!(h2.state("g"), GroupState::Stable);
    assert_eq!(h2.heartbeat("g", &a, gen), ErrorCode::NONE, "members carry on after a restart");
    assert_eq!(h2.fetch("g", None).offsets[0].1.as_ref().unwrap().offset, 42);
    assert_eq!(h2.fetch("simple", None).offsets[0].1.as_ref().unwrap().offset, 7);
    let ts = h2.sync("g", &b, gen, &[]);
    assert_eq!(h2.sync_result(ts).assignment.as_ref(), b"B2", "assignments survive too");
    // b does not heartbeat after the restart: its session runs out.
    h2.advance(i64::from(SESSION) / 2);
    assert_eq!(h2.heartbeat("g", &a, gen), ErrorCode::NONE);
    h2.advance(i64::from(SESSION) / 2 + 1);
    assert_eq!(h2.heartbeat("g", &b, gen), ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_snapshot_holds_the_whole_state_and_tombstones_delete() {
    let mut h = Harness::default();
    let (a, _, gen) = h.stable_pair("g");
    let t = h.commit("g", &a, gen, &[("t", 0, 1), ("t", 1, 2)]);
    h.commit_errors(t);
    let t = h.commit("g", &a, gen, &[("t", 0, 3)]);
    h.commit_errors(t);
    let t = h.commit("gone", "", -1, &[("t", 0, 1)]);
    h.commit_errors(t);
    let t = h.send(GroupRequest::Delete(vec!["gone".into()]));
    assert_eq!(h.take(t), Some(GroupReply::Delete(vec![ErrorCode::NONE])));
    let snapshot = h.c.snapshot();
    assert_eq!(snapshot.len(), h.c.live_records());
    assert_eq!(snapshot.len(), 3, "group g, two offsets");
    let mut from_log = GroupMachine::new(GroupConfig::default(), 1);
    for r in &h.log {
        from_log.load(&r.key, r.value.as_deref()).unwrap();
    }
    assert!(from_log.group("gone").is_none(), "tombstones delete while loading");
    let mut from_snapshot = GroupMachine::new(GroupConfig::default(), 1);
    for r in &snapshot {
        from_snapshot.load(&r.key, r.value.as_deref()).unwrap();
    }
    for c in [&from_log, &from_snapshot] {
        let g = c.group("g").unwrap();
        assert_eq!(g.offsets, h.c.group("g").unwrap().offsets);
        assert_eq!(g.generation, gen);
        assert_eq!(g.members.len(), 2);
    }
}

#[test]
fn offsets_of_an_empty_group_expire_after_the_retention_and_the_group_goes() {
    let day = 24 * 3600 * 1000;
    let mut h = Harness::new(GroupConfig {
        initial_rebalance_delay_ms: 0,
        offsets_retention_ms: day,
        offsets_retention_check_interval_ms: 60_000,
        ..GroupConfig::default()
    });
    let (a, b, gen) = h.stable_pair("g");
    let t = h.commit("g", &a, gen, &[("t", 0, 5)]);
    h.commit_errors(t);
    // Members stay for two days: a stable group's offsets never expire by age.
    for _ in 0..(2 * day / 5000) {
        h.advance(5000);
        h.heartbeat("g", &a, gen);
        h.heartbeat("g", &b, gen);
    }
    assert!(h.fetch("g", None).offsets[0].1.is_some());
    for m in [a, b] {
        let t = h.send(GroupRequest::Leave {
            group: "g".into(),
            members: vec![LeavingMember { member_id: m, instance_id: None }],
        });
        h.take(t);
    }
    h.advance(0);
    assert_eq!(h.state("g"), GroupState::Empty);
    h.advance(day - 120_000);
    assert_eq!(h.fetch("g", None).offsets.len(), 1, "within the retention after emptying");
    h.advance(120_000);
    assert_eq!(h.state("g"), GroupState::Dead, "offsets expired and the group was removed");
    let tombstones = h.log.iter().rev().take(2).filter(|r| r.value.is_none()).count();
    assert_eq!(tombstones, 2, "offset and group tombstones");

    let t = h.commit("simple", "", -1, &[("t", 0, 5)]);
    h.commit_errors(t);
    h.advance(day + 60_000);
    assert_eq!(h.state("simple"), GroupState::Dead, "simple groups expire by commit time");
}

#[test]
fn an_explicit_commit_timestamp_dates_the_offset_and_its_expiry() {
    let day = 24 * 3600 * 1000;
    let mut h = Harness::new(GroupConfig {
        offsets_retention_ms: day,
        offsets_retention_check_interval_ms: 60_000,
        ..GroupConfig::default()
    });
    h.advance(10 * day);
    // OffsetCommit v1 says when each offset was committed: partition 0 half a day ago
    // (-1 for partition 1: the coordinator's clock).
    let half_a_day_ago = h.now - day / 2;
    let entry = |partition, commit_timestamp| OffsetToCommit {
        partition: tp("t", partition),
        offset: 7,
        leader_epoch: -1,
        commit_timestamp,
        metadata: None,
    };
    let t = h.send(GroupRequest::Commit(CommitRequest {
        group_id: "simple".into(),
        generation: -1,
        member_id: String::new(),
        instance_id: None,
        retention_ms: -1,
        offsets: vec![entry(0, half_a_day_ago), entry(1, -1)],
    }));
    assert_eq!(h.commit_errors(t), [ErrorCode::NONE, ErrorCode::NONE]);
    let stamps: Vec<i64> = {
        let offsets = &h.c.group("simple").unwrap().offsets;
        [0, 1].map(|p| offsets[&tp("t", p)].commit_timestamp).to_vec()
    };
    assert_eq!(stamps, [half_a_day_ago, h.now]);
    h.advance(day / 2 + 60_000);
    let left: Vec<i32> =
        h.fetch("simple", None).offsets.iter().map(|(tp, _)| tp.partition).collect();
    assert_eq!(left, [1], "partition 0 expired a retention after its stated commit time");
}

#[test]
fn deleting_groups_and_offsets() {
    let mut h = Harness::default();
    let (a, _, gen) = h.stable_pair("active");
    let t = h.commit("active", &a, gen, &[("t", 0, 1), ("other", 0, 1)]);
    h.commit_errors(t);
    let t = h.commit("idle", "", -1, &[("t", 0, 1)]);
    h.commit_errors(t);
    let t = h.send(GroupRequest::Delete(vec!["active".into(), "idle".into(), "none".into()]));
    assert_eq!(
        h.take(t),
        Some(GroupReply::Delete(vec![
            ErrorCode::NON_EMPTY_GROUP,
            ErrorCode::NONE,
            ErrorCode::GROUP_ID_NOT_FOUND,
        ]))
    );
    let t = h.send(GroupRequest::DeleteOffsets {
        group: "active".into(),
        partitions: vec![tp("t", 0), tp("other", 0)],
    });
    let Some(GroupReply::DeleteOffsets(r)) = h.take(t) else { panic!() };
    assert_eq!(r.partitions[0].1, ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC);
    assert_eq!(r.partitions[1].1, ErrorCode::NONE);
    assert_eq!(h.fetch("active", None).offsets.len(), 1);
    let t =
        h.send(GroupRequest::DeleteOffsets { group: "none".into(), partitions: vec![tp("t", 0)] });
    let Some(GroupReply::DeleteOffsets(r)) = h.take(t) else { panic!() };
    assert_eq!(r.error, ErrorCode::GROUP_ID_NOT_FOUND);
}

#[test]
fn list_and_describe_report_states_and_stable_members_in_full() {
    let mut h = Harness::default();
    let (a, b, _) = h.stable_pair("s");
    let t = h.commit("e", "", -1, &[("t", 0, 1)]);
    h.commit_errors(t);
    let t = h.send(GroupRequest::List(ListFilter::parse([], [])));
    let Some(GroupReply::List { error: e, groups }) = h.take(t) else { panic!() };
    assert_eq!(e, ErrorCode::NONE);
    let listed: Vec<_> =
        groups.iter().map(|g| (g.group_id.as_str(), g.protocol_type.as_str(), g.state)).collect();
    assert_eq!(listed, [("e", "", GroupState::Empty), ("s", "consumer", GroupState::Stable)]);
    let t = h.send(GroupRequest::List(ListFilter::parse(["stable"], ["Classic"])));
    let Some(GroupReply::List { error: _, groups }) = h.take(t) else { panic!() };
    assert_eq!(groups.len(), 1);
    let t = h.send(GroupRequest::List(ListFilter::parse([], ["consumer"])));
    assert!(matches!(h.take(t), Some(GroupReply::List { error: _, groups: g }) if g.is_empty()));
    let t = h.send(GroupRequest::Describe(vec!["s".into(), "missing".into()]));
    let Some(GroupReply::Describe(d)) = h.take(t) else { panic!() };
    assert_eq!((d[0].state, d[0].protocol.as_str()), (GroupState::Stable, "range"));
    assert_eq!(d[0].members[0].member_id, a);
    assert_eq!(d[0].members[1].member_id, b);
    assert_eq!(d[0].members[1].assignment.as_ref(), b"B2");
    assert_eq!(d[0].members[1].metadata, subscription(&["t"]));
    assert_eq!((d[1].state, d[1].error), (GroupState::Dead, ErrorCode::NONE));
    h.join("s", &a, true);
    let t = h.send(GroupRequest::Describe(vec!["s".into()]));
    let Some(GroupReply::Describe(d)) = h.take(t) else { panic!() };
    assert_eq!(d[0].state, GroupState::PreparingRebalance);
    assert!(d[0].members[1].assignment.is_empty(), "only stable groups show assignments");
}

#[test]
fn shutdown_answers_waiting_requests_with_not_coordinator() {
    let mut h = Harness::default();
    let (ta, _) = h.join_new("g");
    h.step(Input::Shutdown);
    assert_eq!(h.join_result(ta).error, ErrorCode::NOT_COORDINATOR);
    let t = h.join("g", "", true);
    assert_eq!(h.join_result(t).error, ErrorCode::NOT_COORDINATOR);
}

#[test]
fn member_ids_are_client_id_and_a_uuid() {
    let mut h = Harness::default();
    let (_, id) = h.join_new("g");
    let uuid = id.strip_prefix("client-").unwrap();
    let parsed = uuid::Uuid::parse_str(uuid).unwrap();
    assert_eq!(parsed.get_version_num(), 4);
}

#[test]
fn offsets_of_deleted_topics_go_from_every_group_commits_in_flight_included() {
    let mut h = Harness::default();
    let (a, _, gen) = h.stable_pair("g");
    let t = h.commit("g", &a, gen, &[("gone", 0, 5), ("kept", 0, 6)]);
    h.commit_errors(t);
    let t = h.commit("simple", "", -1, &[("gone", 1, 7)]);
    h.commit_errors(t);
    // A commit still being written when the topic goes.
    h.auto_write = false;
    let late = h.commit("g", &a, gen, &[("gone", 2, 8), ("kept", 1, 9)]);
    h.step(Input::TopicsDeleted(vec!["gone".into()]));
    h.complete_writes(Ok(()));
    assert_eq!(h.commit_errors(late), [ErrorCode::NONE, ErrorCode::NONE]);
    let offsets = |h: &mut Harness, group: &str| -> Vec<(String, i32, i64)> {
        h.fetch(group, None)
            .offsets
            .into_iter()
            .map(|(tp, o)| (tp.topic.to_string(), tp.partition, o.unwrap().offset))
            .collect()
    };
    assert_eq!(offsets(&mut h, "g"), [("kept".into(), 0, 6), ("kept".into(), 1, 9)]);
    assert!(offsets(&mut h, "simple").is_empty());
    // The log says the same: the tombstones come after the commits they cancel.
    let mut from_log = GroupMachine::new(GroupConfig::default(), 1);
    for r in &h.log {
        from_log.load(&r.key, r.value.as_deref()).unwrap();
    }
    let loaded = &from_log.group("g").unwrap().offsets;
    assert_eq!(loaded, &h.c.group("g").unwrap().offsets);
    assert!(from_log.group("simple").is_none_or(|g| g.offsets.is_empty()));
    // A topic created again under the name takes new commits.
    h.auto_write = true;
    let t = h.commit("g", &a, gen, &[("gone", 0, 1)]);
    h.commit_errors(t);
    assert_eq!(offsets(&mut h, "g")[0], ("gone".into(), 0, 1));
}

mod hostile;

#[test]
fn transactional_offsets_skip_the_generation_check_and_the_member_is_checked_as_kip_447_does() {
    use crate::group::request::TxnMember;
    let mut h = Harness::default();
    let (leader, _, generation) = h.stable_pair("g");
    let check = |h: &mut Harness, generation: i32, member: &str| {
        let t = h.send(GroupRequest::ValidateTxnMember(TxnMember {
            group_id: "g".into(),
            generation,
            member_id: member.into(),
            instance_id: None,
        }));
        match h.take(t) {
            Some(GroupReply::Heartbeat(e)) => e,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(check(&mut h, generation, &leader), ErrorCode::NONE);
    assert_eq!(check(&mut h, -1, ""), ErrorCode::NONE, "a producer of before KIP-447");
    assert_eq!(check(&mut h, generation + 1, &leader), ErrorCode::ILLEGAL_GENERATION);
    assert_eq!(check(&mut h, generation, "stranger"), ErrorCode::UNKNOWN_MEMBER_ID);
    // A commit without member into a group with members: refused as OffsetCommit, taken
    // as a committed transaction's offsets.
    let t = h.commit("g", "", -1, &[("t", 0, 5)]);
    assert_eq!(h.commit_errors(t), vec![ErrorCode::UNKNOWN_MEMBER_ID]);
    let offsets = vec![OffsetToCommit {
        partition: tp("t", 0),
        offset: 9,
        leader_epoch: -1,
        commit_timestamp: -1,
        metadata: None,
    }];
    let t = h.send(GroupRequest::CommitTxnOffsets { group: "g".into(), offsets: offsets.clone() });
    assert_eq!(h.commit_errors(t), vec![ErrorCode::NONE]);
    assert_eq!(h.fetch("g", None).offsets[0].1.as_ref().unwrap().offset, 9);
    // A group that does not exist yet is created by them.
    let t = h.send(GroupRequest::CommitTxnOffsets { group: "new".into(), offsets });
    assert_eq!(h.commit_errors(t), vec![ErrorCode::NONE]);
    assert_eq!(h.fetch("new", None).offsets[0].1.as_ref().unwrap().offset, 9);
}
