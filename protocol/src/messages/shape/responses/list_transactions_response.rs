//! Walker for kafka-protocol's `list_transactions_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `ListTransactionsResponse`.
pub(in super::super) fn list_transactions_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=1).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    w.fixed(2)?; // error_code
    w.compact_array(|w| w.compact_string())?; // unknown_state_filters
    w.compact_array(|w| transaction_state(w, version))?; // transaction_states
    w.unknown_tagged_fields()?;
    Ok(())
}

/// Walks `TransactionState`.
pub(in super::super) fn transaction_state<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=1).contains(&version) {
        return Err(w.invalid(version));
    }
    w.compact_string()?; // transactional_id
    w.fixed(8)?; // producer_id
    w.compact_string()?; // transaction_state
    w.unknown_tagged_fields()?;
    Ok(())
}
