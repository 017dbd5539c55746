//! Walker for kafka-protocol's `init_producer_id_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `InitProducerIdResponse`.
pub(in super::super) fn init_producer_id_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    w.fixed(2)?; // error_code
    w.fixed(8)?; // producer_id
    w.fixed(2)?; // producer_epoch
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
