//! Walker for kafka-protocol's `sync_group_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `SyncGroupRequest`.
pub(in super::super) fn sync_group_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 4 {
        w.compact_string()?; // group_id
    } else {
        w.string()?; // group_id
    }
    w.fixed(4)?; // generation_id
    if version >= 4 {
        w.compact_string()?; // member_id
    } else {
        w.string()?; // member_id
    }
    if version >= 3 {
        if version >= 4 {
            w.compact_string()?; // group_instance_id
        } else {
            w.string()?; // group_instance_id
        }
    }
    if version >= 5 {
        w.compact_string()?; // protocol_type
    }
    if version >= 5 {
        w.compact_string()?; // protocol_name
    }
    if version >= 4 {
        w.compact_array(|w| sync_group_request_assignment(w, version))?; // assignments
    } else {
        w.array(|w| sync_group_request_assignment(w, version))?; // assignments
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `SyncGroupRequestAssignment`.
pub(in super::super) fn sync_group_request_assignment<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 4 {
        w.compact_string()?; // member_id
    } else {
        w.string()?; // member_id
    }
    if version >= 4 {
        w.compact_bytes()?; // assignment
    } else {
        w.bytes()?; // assignment
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
