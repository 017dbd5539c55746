//! Walker for kafka-protocol's `join_group_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `JoinGroupResponse`.
pub(in super::super) fn join_group_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.fixed(4)?; // throttle_time_ms
    }
    w.fixed(2)?; // error_code
    w.fixed(4)?; // generation_id
    if version >= 7 {
        w.compact_string()?; // protocol_type
    }
    if version >= 6 {
        w.compact_string()?; // protocol_name
    } else {
        w.string()?; // protocol_name
    }
    if version >= 6 {
        w.compact_string()?; // leader
    } else {
        w.string()?; // leader
    }
    if version >= 9 {
        w.boolean()?; // skip_assignment
    }
    if version >= 6 {
        w.compact_string()?; // member_id
    } else {
        w.string()?; // member_id
    }
    if version >= 6 {
        w.compact_array(|w| join_group_response_member(w, version))?; // members
    } else {
        w.array(|w| join_group_response_member(w, version))?; // members
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `JoinGroupResponseMember`.
pub(in super::super) fn join_group_response_member<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 6 {
        w.compact_string()?; // member_id
    } else {
        w.string()?; // member_id
    }
    if version >= 5 {
        if version >= 6 {
            w.compact_string()?; // group_instance_id
        } else {
            w.string()?; // group_instance_id
        }
    }
    if version >= 6 {
        w.compact_bytes()?; // metadata
    } else {
        w.bytes()?; // metadata
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
