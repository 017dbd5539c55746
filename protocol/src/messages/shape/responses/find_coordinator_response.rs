//! Walker for kafka-protocol's `find_coordinator_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `Coordinator`.
pub(in super::super) fn coordinator<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=6).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 4 {
        w.compact_string()?; // key
    }
    if version >= 4 {
        w.fixed(4)?; // node_id
    }
    if version >= 4 {
        w.compact_string()?; // host
    }
    if version >= 4 {
        w.fixed(4)?; // port
    }
    if version >= 4 {
        w.fixed(2)?; // error_code
    }
    if version >= 4 {
        w.compact_string()?; // error_message
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `FindCoordinatorResponse`.
pub(in super::super) fn find_coordinator_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=6).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 1 {
        w.fixed(4)?; // throttle_time_ms
    }
    if version <= 3 {
        w.fixed(2)?; // error_code
    }
    if (1..=3).contains(&version) {
        if version >= 3 {
            w.compact_string()?; // error_message
        } else {
            w.string()?; // error_message
        }
    }
    if version <= 3 {
        w.fixed(4)?; // node_id
    }
    if version <= 3 {
        if version >= 3 {
            w.compact_string()?; // host
        } else {
            w.string()?; // host
        }
    }
    if version <= 3 {
        w.fixed(4)?; // port
    }
    if version >= 4 {
        w.compact_array(|w| coordinator(w, version))?; // coordinators
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
