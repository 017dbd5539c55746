//! Heartbeat, LeaveGroup and session expiry: the member and generation checks, silent
//! members expelled, leaving members.

use super::*;

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
