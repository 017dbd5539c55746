//! Walker for kafka-protocol's `end_txn_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `EndTxnResponse`.
pub(in super::super) fn end_txn_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    w.fixed(2)?; // error_code
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
