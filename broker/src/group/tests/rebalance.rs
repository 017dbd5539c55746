//! JoinGroup and the join phase: member ids, leaders, the initial delay, the rebalance
//! timeout, static members and protocol checks.

use super::*;

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
fn member_ids_are_client_id_and_a_uuid() {
    let mut h = Harness::default();
    let (_, id) = h.join_new("g");
    let uuid = id.strip_prefix("client-").unwrap();
    let parsed = uuid::Uuid::parse_str(uuid).unwrap();
    assert_eq!(parsed.get_version_num(), 4);
}
