//! Walker for kafka-protocol's `describe_transactions_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DescribeTransactionsResponse`.
pub(in super::super) fn describe_transactions_response<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    w.compact_array(|w| transaction_state(w, version))?; // transaction_states
    w.unknown_tagged_fields()?;
    Ok(())
}

/// Walks `TopicData`.
pub(in super::super) fn topic_data<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.compact_string()?; // topic
    w.compact_array(|w| w.fixed(4))?; // partitions
    w.unknown_tagged_fields()?;
    Ok(())
}

/// Walks `TransactionState`.
pub(in super::super) fn transaction_state<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.fixed(2)?; // error_code
    w.compact_string()?; // transactional_id
    w.compact_string()?; // transaction_state
    w.fixed(4)?; // transaction_timeout_ms
    w.fixed(8)?; // transaction_start_time_ms
    w.fixed(8)?; // producer_id
    w.fixed(2)?; // producer_epoch
    w.compact_array(|w| topic_data(w, version))?; // topics
    w.unknown_tagged_fields()?;
    Ok(())
}
