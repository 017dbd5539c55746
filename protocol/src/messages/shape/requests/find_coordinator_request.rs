//! Walker for kafka-protocol's `find_coordinator_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `FindCoordinatorRequest`.
pub(in super::super) fn find_coordinator_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=6).contains(&version) {
        return Err(w.invalid(version));
    }
    if version <= 3 {
        if version >= 3 {
            w.compact_string()?; // key
        } else {
            w.string()?; // key
        }
    }
    if version >= 1 {
        w.fixed(1)?; // key_type
    }
    if version >= 4 {
        w.compact_array(|w| w.compact_string())?; // coordinator_keys
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
