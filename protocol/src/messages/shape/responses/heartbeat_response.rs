//! Walker for kafka-protocol's `heartbeat_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `HeartbeatResponse`.
pub(in super::super) fn heartbeat_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 1 {
        w.fixed(4)?; // throttle_time_ms
    }
    w.fixed(2)?; // error_code
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
