//! Walker for kafka-protocol's `join_group_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `JoinGroupRequest`.
pub(in super::super) fn join_group_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 6 {
        w.compact_string()?; // group_id
    } else {
        w.string()?; // group_id
    }
    w.fixed(4)?; // session_timeout_ms
    if version >= 1 {
        w.fixed(4)?; // rebalance_timeout_ms
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
        w.compact_string()?; // protocol_type
    } else {
        w.string()?; // protocol_type
    }
    if version >= 6 {
        w.compact_array(|w| join_group_request_protocol(w, version))?; // protocols
    } else {
        w.array(|w| join_group_request_protocol(w, version))?; // protocols
    }
    if version >= 8 {
        w.compact_string()?; // reason
    }
    if version >= 6 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `JoinGroupRequestProtocol`.
pub(in super::super) fn join_group_request_protocol<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=9).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 6 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
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
