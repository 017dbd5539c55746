//! Walker for kafka-protocol's `heartbeat_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `HeartbeatRequest`.
pub(in super::super) fn heartbeat_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
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
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
