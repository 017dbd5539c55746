//! Walker for kafka-protocol's `leave_group_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `LeaveGroupRequest`.
pub(in super::super) fn leave_group_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 4 {
        w.compact_string()?; // group_id
    } else {
        w.string()?; // group_id
    }
    if version <= 2 {
        w.string()?; // member_id
    }
    if version >= 3 {
        if version >= 4 {
            w.compact_array(|w| member_identity(w, version))?; // members
        } else {
            w.array(|w| member_identity(w, version))?; // members
        }
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `MemberIdentity`.
pub(in super::super) fn member_identity<W: Visitor>(w: &mut W, version: i16) -> Walked {
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
    if version >= 5 {
        w.compact_string()?; // reason
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
