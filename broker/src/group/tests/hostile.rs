//! The state machine under requests built to cost it the most: many elements in one
//! request, each naming the same thing or the same costly thing. Each test runs a size at
//! which a quadratic path would not finish within the test's time limit.

use std::time::{Duration, Instant};

use sluice_protocol::error_code::ErrorCode;

use super::{join_request, tp, Harness};
use crate::group::request::{
    CommitRequest, GroupReply, GroupRequest, LeavingMember, ListFilter, OffsetToCommit,
};
use crate::group::types::GroupState;

/// Far above what the O(n log n) paths take in a debug build, far below what O(n²) takes.
const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn a_leave_of_every_member_in_join_order_elects_each_next_leader_without_a_sort() {
    let n = 50_000;
    let mut h = Harness::default();
    let tokens: Vec<_> = (0..n)
        .map(|_| h.send(GroupRequest::Join(join_request("g", "", false, &["range"]))))
        .collect();
    h.advance(0);
    let mut members = Vec::with_capacity(n);
    for t in tokens {
        members.push(h.join_result(t).member_id);
    }
    assert_eq!(h.state("g"), GroupState::CompletingRebalance);
    assert_eq!(h.c.group("g").unwrap().leader.as_ref(), Some(&members[0]));
    // In join order, each leaving member is the leader of the members left.
    let leaving =
        members.iter().map(|m| LeavingMember { member_id: m.clone(), instance_id: None }).collect();
    let started = Instant::now();
    let t = h.send(GroupRequest::Leave { group: "g".into(), members: leaving });
    let took = started.elapsed();
    let Some(GroupReply::Leave(r)) = h.take(t) else { panic!("a leave answer") };
    assert!(r.members.iter().all(|(_, e)| *e == ErrorCode::NONE));
    assert_eq!(h.state("g"), GroupState::Empty);
    assert!(took < LIMIT, "{n} members left in {took:?}");
}

#[test]
fn a_partition_committed_many_times_in_one_request_is_one_record_of_its_last_valid_entry() {
    let mut h = Harness::default();
    let big = "m".repeat(h.c.config.offset_metadata_max_bytes + 1);
    let entry = |partition, offset, metadata: &str| OffsetToCommit {
        partition: tp("t", partition),
        offset,
        leader_epoch: -1,
        commit_timestamp: -1,
        metadata: Some(metadata.to_owned()),
    };
    let mut offsets = vec![entry(0, 1, ""), entry(0, 2, &big), entry(0, 3, ""), entry(1, 4, "")];
    offsets.extend((0..200_000).map(|i| entry(1, i, "")));
    offsets.push(entry(0, 5, &big));
    let t = h.send(GroupRequest::Commit(CommitRequest {
        group_id: "g".into(),
        generation: -1,
        member_id: String::new(),
        instance_id: None,
        retention_ms: -1,
        offsets,
    }));
    let errors = h.commit_errors(t);
    assert_eq!(errors.len(), 200_005, "an answer per entry");
    let too_large = ErrorCode::OFFSET_METADATA_TOO_LARGE;
    assert_eq!(errors[..4], [ErrorCode::NONE, too_large, ErrorCode::NONE, ErrorCode::NONE]);
    assert_eq!(errors[200_004], too_large);
    assert_eq!(h.log.len(), 2, "one record per partition");
    let fetched = h.fetch("g", None).offsets;
    let offsets: Vec<_> =
        fetched.iter().map(|(tp, o)| (tp.partition, o.as_ref().unwrap().offset)).collect();
    assert_eq!(offsets, [(0, 3), (1, 199_999)]);
}

#[test]
fn a_list_filter_naming_a_state_a_million_times_is_read_once() {
    let mut h = Harness::default();
    for i in 0..2_000 {
        let t = h.commit(&format!("g{i}"), "", -1, &[("t", 0, 1)]);
        h.commit_errors(t);
    }
    let started = Instant::now();
    let t = h.send(GroupRequest::List(ListFilter::parse(vec!["empty"; 1 << 20], [])));
    let took = started.elapsed();
    let Some(GroupReply::List { error, groups }) = h.take(t) else { panic!("a list answer") };
    assert_eq!(error, ErrorCode::NONE);
    assert_eq!(groups.len(), 2_000);
    let t = h.send(GroupRequest::List(ListFilter::parse(vec!["Stable"; 1 << 20], [])));
    let Some(GroupReply::List { error: _, groups }) = h.take(t) else { panic!("a list answer") };
    assert!(groups.is_empty());
    assert!(took < LIMIT, "listed in {took:?}");
}
