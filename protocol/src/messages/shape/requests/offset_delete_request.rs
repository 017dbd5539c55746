//! Walker for kafka-protocol's `offset_delete_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `OffsetDeleteRequest`.
pub(in super::super) fn offset_delete_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.string()?; // group_id
    w.array(|w| offset_delete_request_topic(w, version))?; // topics
    Ok(())
}

/// Walks `OffsetDeleteRequestPartition`.
pub(in super::super) fn offset_delete_request_partition<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    Ok(())
}

/// Walks `OffsetDeleteRequestTopic`.
pub(in super::super) fn offset_delete_request_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.string()?; // name
    w.array(|w| offset_delete_request_partition(w, version))?; // partitions
    Ok(())
}
