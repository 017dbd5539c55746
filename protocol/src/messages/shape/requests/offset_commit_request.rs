//! Walker for kafka-protocol's `offset_commit_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `OffsetCommitRequest`.
pub(in super::super) fn offset_commit_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 8 {
        w.compact_string()?; // group_id
    } else {
        w.string()?; // group_id
    }
    if version >= 1 {
        w.fixed(4)?; // generation_id_or_member_epoch
    }
    if version >= 1 {
        if version >= 8 {
            w.compact_string()?; // member_id
        } else {
            w.string()?; // member_id
        }
    }
    if version >= 7 {
        if version >= 8 {
            w.compact_string()?; // group_instance_id
        } else {
            w.string()?; // group_instance_id
        }
    }
    if (2..=4).contains(&version) {
        w.fixed(8)?; // retention_time_ms
    }
    if version >= 8 {
        w.compact_array(|w| offset_commit_request_topic(w, version))?; // topics
    } else {
        w.array(|w| offset_commit_request_topic(w, version))?; // topics
    }
    if version >= 8 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `OffsetCommitRequestPartition`.
pub(in super::super) fn offset_commit_request_partition<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    w.fixed(8)?; // committed_offset
    if version >= 6 {
        w.fixed(4)?; // committed_leader_epoch
    }
    if version == 1 {
        w.fixed(8)?; // commit_timestamp
    }
    if version >= 8 {
        w.compact_string()?; // committed_metadata
    } else {
        w.string()?; // committed_metadata
    }
    if version >= 8 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `OffsetCommitRequestTopic`.
pub(in super::super) fn offset_commit_request_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 8 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 8 {
        w.compact_array(|w| offset_commit_request_partition(w, version))?; // partitions
    } else {
        w.array(|w| offset_commit_request_partition(w, version))?; // partitions
    }
    if version >= 8 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
