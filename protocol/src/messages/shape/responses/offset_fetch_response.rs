//! Walker for kafka-protocol's `offset_fetch_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `OffsetFetchResponse`.
pub(in super::super) fn offset_fetch_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        w.fixed(4)?; // throttle_time_ms
    }
    if version <= 7 {
        if version >= 6 {
            w.compact_array(|w| offset_fetch_response_topic(w, version))?; // topics
        } else {
            w.array(|w| offset_fetch_response_topic(w, version))?; // topics
        }
    }
    if (2..=7).contains(&version) {
        w.fixed(2)?; // error_code
    }
    if version >= 8 {
        w.compact_array(|w| offset_fetch_response_group(w, version))?; // groups
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `OffsetFetchResponseGroup`.
pub(in super::super) fn offset_fetch_response_group<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 8 {
        w.compact_string()?; // group_id
    }
    if version >= 8 {
        w.compact_array(|w| offset_fetch_response_topics(w, version))?; // topics
    }
    if version >= 8 {
        w.fixed(2)?; // error_code
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `OffsetFetchResponsePartition`.
pub(in super::super) fn offset_fetch_response_partition<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version <= 7 {
        w.fixed(4)?; // partition_index
    }
    if version <= 7 {
        w.fixed(8)?; // committed_offset
    }
    if (5..=7).contains(&version) {
        w.fixed(4)?; // committed_leader_epoch
    }
    if version <= 7 {
        if version >= 6 {
            w.compact_string()?; // metadata
        } else {
            w.string()?; // metadata
        }
    }
    if version <= 7 {
        w.fixed(2)?; // error_code
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `OffsetFetchResponsePartitions`.
pub(in super::super) fn offset_fetch_response_partitions<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 8 {
        w.fixed(4)?; // partition_index
    }
    if version >= 8 {
        w.fixed(8)?; // committed_offset
    }
    if version >= 8 {
        w.fixed(4)?; // committed_leader_epoch
    }
    if version >= 8 {
        w.compact_string()?; // metadata
    }
    if version >= 8 {
        w.fixed(2)?; // error_code
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `OffsetFetchResponseTopic`.
pub(in super::super) fn offset_fetch_response_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version <= 7 {
        if version >= 6 {
            w.compact_string()?; // name
        } else {
            w.string()?; // name
        }
    }
    if version <= 7 {
        if version >= 6 {
            w.compact_array(|w| offset_fetch_response_partition(w, version))?; // partitions
        } else {
            w.array(|w| offset_fetch_response_partition(w, version))?; // partitions
        }
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `OffsetFetchResponseTopics`.
pub(in super::super) fn offset_fetch_response_topics<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 8 {
        w.compact_string()?; // name
    }
    if version >= 8 {
        w.compact_array(|w| offset_fetch_response_partitions(w, version))?; // partitions
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
