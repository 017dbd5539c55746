//! Walker for kafka-protocol's `leave_group_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `LeaveGroupResponse`.
pub(in super::super) fn leave_group_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 1 {
        w.fixed(4)?; // throttle_time_ms
    }
    w.fixed(2)?; // error_code
    if version >= 3 {
        if version >= 4 {
            w.compact_array(|w| member_response(w, version))?; // members
        } else {
            w.array(|w| member_response(w, version))?; // members
        }
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `MemberResponse`.
pub(in super::super) fn member_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        if version >= 4 {
            w.compact_string()?; // member_id
        } else {
            w.string()?; // member_id
        }
    }
    if version >= 3 {
        if version >= 4 {
            w.compact_string()?; // group_instance_id
        } else {
            w.string()?; // group_instance_id
        }
    }
    if version >= 3 {
        w.fixed(2)?; // error_code
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
