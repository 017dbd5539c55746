//! Walker for kafka-protocol's `txn_offset_commit_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `TxnOffsetCommitRequest`.
pub(in super::super) fn txn_offset_commit_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        w.compact_string()?; // transactional_id
    } else {
        w.string()?; // transactional_id
    }
    if version >= 3 {
        w.compact_string()?; // group_id
    } else {
        w.string()?; // group_id
    }
    w.fixed(8)?; // producer_id
    w.fixed(2)?; // producer_epoch
    if version >= 3 {
        w.fixed(4)?; // generation_id
    }
    if version >= 3 {
        w.compact_string()?; // member_id
    }
    if version >= 3 {
        w.compact_string()?; // group_instance_id
    }
    if version >= 3 {
        w.compact_array(|w| txn_offset_commit_request_topic(w, version))?; // topics
    } else {
        w.array(|w| txn_offset_commit_request_topic(w, version))?; // topics
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `TxnOffsetCommitRequestPartition`.
pub(in super::super) fn txn_offset_commit_request_partition<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    w.fixed(8)?; // committed_offset
    if version >= 2 {
        w.fixed(4)?; // committed_leader_epoch
    }
    if version >= 3 {
        w.compact_string()?; // committed_metadata
    } else {
        w.string()?; // committed_metadata
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `TxnOffsetCommitRequestTopic`.
pub(in super::super) fn txn_offset_commit_request_topic<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 3 {
        w.compact_array(|w| txn_offset_commit_request_partition(w, version))?; // partitions
    } else {
        w.array(|w| txn_offset_commit_request_partition(w, version))?; // partitions
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
