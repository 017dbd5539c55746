//! Walker for kafka-protocol's `list_offsets_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `ListOffsetsPartition`.
pub(in super::super) fn list_offsets_partition<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    if version >= 4 {
        w.fixed(4)?; // current_leader_epoch
    }
    w.fixed(8)?; // timestamp
    if version == 0 {
        w.fixed(4)?; // max_num_offsets
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `ListOffsetsRequest`.
pub(in super::super) fn list_offsets_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // replica_id
    if version >= 2 {
        w.fixed(1)?; // isolation_level
    }
    if version >= 6 {
        w.compact_array(|w| list_offsets_topic(w, version))?; // topics
    } else {
        w.array(|w| list_offsets_topic(w, version))?; // topics
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `ListOffsetsTopic`.
pub(in super::super) fn list_offsets_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 6 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 6 {
        w.compact_array(|w| list_offsets_partition(w, version))?; // partitions
    } else {
        w.array(|w| list_offsets_partition(w, version))?; // partitions
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
