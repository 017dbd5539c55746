//! Walker for kafka-protocol's `offset_fetch_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `OffsetFetchRequest`.
pub(in super::super) fn offset_fetch_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version <= 7 {
        if version >= 6 {
            w.compact_string()?; // group_id
        } else {
            w.string()?; // group_id
        }
    }
    if version <= 7 {
        if version >= 6 {
            w.compact_array(|w| offset_fetch_request_topic(w, version))?; // topics
        } else {
            w.array(|w| offset_fetch_request_topic(w, version))?; // topics
        }
    }
    if version >= 8 {
        w.compact_array(|w| offset_fetch_request_group(w, version))?; // groups
    }
    if version >= 7 {
        w.boolean()?; // require_stable
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `OffsetFetchRequestGroup`.
pub(in super::super) fn offset_fetch_request_group<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 8 {
        w.compact_string()?; // group_id
    }
    if version >= 9 {
        w.compact_string()?; // member_id
    }
    if version >= 9 {
        w.fixed(4)?; // member_epoch
    }
    if version >= 8 {
        w.compact_array(|w| offset_fetch_request_topics(w, version))?; // topics
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `OffsetFetchRequestTopic`.
pub(in super::super) fn offset_fetch_request_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
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
            w.compact_array(|w| w.fixed(4))?; // partition_indexes
        } else {
            w.array(|w| w.fixed(4))?; // partition_indexes
        }
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `OffsetFetchRequestTopics`.
pub(in super::super) fn offset_fetch_request_topics<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 8 {
        w.compact_string()?; // name
    }
    if version >= 8 {
        w.compact_array(|w| w.fixed(4))?; // partition_indexes
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
