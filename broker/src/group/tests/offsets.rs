//! Committed offsets and group administration: commits and fetches, expiry, deletion of
//! groups, offsets and topics, ListGroups and DescribeGroups, transactional commits.

use super::*;

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
