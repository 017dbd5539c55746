//! Walker for kafka-protocol's `list_groups_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `ListGroupsResponse`.
pub(in super::super) fn list_groups_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 1 {
        w.fixed(4)?; // throttle_time_ms
    }
    w.fixed(2)?; // error_code
    if version >= 3 {
        w.compact_array(|w| listed_group(w, version))?; // groups
    } else {
        w.array(|w| listed_group(w, version))?; // groups
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `ListedGroup`.
pub(in super::super) fn listed_group<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        w.compact_string()?; // group_id
    } else {
        w.string()?; // group_id
    }
    if version >= 3 {
        w.compact_string()?; // protocol_type
    } else {
        w.string()?; // protocol_type
    }
    if version >= 4 {
        w.compact_string()?; // group_state
    }
    if version >= 5 {
        w.compact_string()?; // group_type
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
