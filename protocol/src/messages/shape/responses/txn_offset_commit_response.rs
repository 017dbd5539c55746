//! Walker for kafka-protocol's `txn_offset_commit_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `TxnOffsetCommitResponse`.
pub(in super::super) fn txn_offset_commit_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    if version >= 3 {
        w.compact_array(|w| txn_offset_commit_response_topic(w, version))?; // topics
    } else {
        w.array(|w| txn_offset_commit_response_topic(w, version))?; // topics
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `TxnOffsetCommitResponsePartition`.
pub(in super::super) fn txn_offset_commit_response_partition<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    w.fixed(2)?; // error_code
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `TxnOffsetCommitResponseTopic`.
pub(in super::super) fn txn_offset_commit_response_topic<W: Visitor>(
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
        w.compact_array(|w| txn_offset_commit_response_partition(w, version))?; // partitions
    } else {
        w.array(|w| txn_offset_commit_response_partition(w, version))?; // partitions
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
