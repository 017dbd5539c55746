//! Walker for kafka-protocol's `describe_groups_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DescribeGroupsResponse`.
pub(in super::super) fn describe_groups_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 1 {
        w.fixed(4)?; // throttle_time_ms
    }
    if version >= 5 {
        w.compact_array(|w| described_group(w, version))?; // groups
    } else {
        w.array(|w| described_group(w, version))?; // groups
    }
    if version >= 5 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DescribedGroup`.
pub(in super::super) fn described_group<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(2)?; // error_code
    if version >= 5 {
        w.compact_string()?; // group_id
    } else {
        w.string()?; // group_id
    }
    if version >= 5 {
        w.compact_string()?; // group_state
    } else {
        w.string()?; // group_state
    }
    if version >= 5 {
        w.compact_string()?; // protocol_type
    } else {
        w.string()?; // protocol_type
    }
    if version >= 5 {
        w.compact_string()?; // protocol_data
    } else {
        w.string()?; // protocol_data
    }
    if version >= 5 {
        w.compact_array(|w| described_group_member(w, version))?; // members
    } else {
        w.array(|w| described_group_member(w, version))?; // members
    }
    if version >= 3 {
        w.fixed(4)?; // authorized_operations
    }
    if version >= 5 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DescribedGroupMember`.
pub(in super::super) fn described_group_member<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 5 {
        w.compact_string()?; // member_id
    } else {
        w.string()?; // member_id
    }
    if version >= 4 {
        if version >= 5 {
            w.compact_string()?; // group_instance_id
        } else {
            w.string()?; // group_instance_id
        }
    }
    if version >= 5 {
        w.compact_string()?; // client_id
    } else {
        w.string()?; // client_id
    }
    if version >= 5 {
        w.compact_string()?; // client_host
    } else {
        w.string()?; // client_host
    }
    if version >= 5 {
        w.compact_bytes()?; // member_metadata
    } else {
        w.bytes()?; // member_metadata
    }
    if version >= 5 {
        w.compact_bytes()?; // member_assignment
    } else {
        w.bytes()?; // member_assignment
    }
    if version >= 5 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
