//! Walker for kafka-protocol's `list_transactions_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `ListTransactionsRequest`.
pub(in super::super) fn list_transactions_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=1).contains(&version) {
        return Err(w.invalid(version));
    }
    w.compact_array(|w| w.compact_string())?; // state_filters
    w.compact_array(|w| w.fixed(8))?; // producer_id_filters
    if version >= 1 {
        w.fixed(8)?; // duration_filter
    }
    w.unknown_tagged_fields()?;
    Ok(())
}
