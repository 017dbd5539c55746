//! Walker for kafka-protocol's `end_txn_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `EndTxnRequest`.
pub(in super::super) fn end_txn_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        w.compact_string()?; // transactional_id
    } else {
        w.string()?; // transactional_id
    }
    w.fixed(8)?; // producer_id
    w.fixed(2)?; // producer_epoch
    w.boolean()?; // committed
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
