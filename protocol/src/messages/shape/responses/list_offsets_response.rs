//! Walker for kafka-protocol's `list_offsets_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `ListOffsetsPartitionResponse`.
pub(in super::super) fn list_offsets_partition_response<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    w.fixed(2)?; // error_code
    if version == 0 {
        w.array(|w| w.fixed(8))?; // old_style_offsets
    }
    if version >= 1 {
        w.fixed(8)?; // timestamp
    }
    if version >= 1 {
        w.fixed(8)?; // offset
    }
    if version >= 4 {
        w.fixed(4)?; // leader_epoch
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `ListOffsetsResponse`.
pub(in super::super) fn list_offsets_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.fixed(4)?; // throttle_time_ms
    }
    if version >= 6 {
        w.compact_array(|w| list_offsets_topic_response(w, version))?; // topics
    } else {
        w.array(|w| list_offsets_topic_response(w, version))?; // topics
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `ListOffsetsTopicResponse`.
pub(in super::super) fn list_offsets_topic_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 6 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 6 {
        w.compact_array(|w| list_offsets_partition_response(w, version))?; // partitions
    } else {
        w.array(|w| list_offsets_partition_response(w, version))?; // partitions
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
