//! Walker for kafka-protocol's `init_producer_id_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `InitProducerIdRequest`.
pub(in super::super) fn init_producer_id_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_string()?; // transactional_id
    } else {
        w.string()?; // transactional_id
    }
    w.fixed(4)?; // transaction_timeout_ms
    if version >= 3 {
        w.fixed(8)?; // producer_id
    }
    if version >= 3 {
        w.fixed(2)?; // producer_epoch
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
