//! The machine's own lifecycle: loading `__consumer_offsets` back, the records that hold
//! its whole state (what a cleaned log keeps), shutdown.

use super::*;

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
fn the_latest_records_hold_the_whole_state_and_tombstones_delete() {
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
fn shutdown_answers_waiting_requests_with_not_coordinator() {
    let mut h = Harness::default();
    let (ta, _) = h.join_new("g");
    h.step(Input::Shutdown);
    assert_eq!(h.join_result(ta).error, ErrorCode::NOT_COORDINATOR);
    let t = h.join("g", "", true);
    assert_eq!(h.join_result(t).error, ErrorCode::NOT_COORDINATOR);
}
