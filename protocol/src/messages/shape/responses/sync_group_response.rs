//! Walker for kafka-protocol's `sync_group_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `SyncGroupResponse`.
pub(in super::super) fn sync_group_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 1 {
        w.fixed(4)?; // throttle_time_ms
    }
    w.fixed(2)?; // error_code
    if version >= 5 {
        w.compact_string()?; // protocol_type
    }
    if version >= 5 {
        w.compact_string()?; // protocol_name
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
