//! SyncGroup: the leader's assignment, given once it is written, and members that never
//! sync.

use super::*;

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
