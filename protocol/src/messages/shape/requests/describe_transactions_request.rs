//! Walker for kafka-protocol's `describe_transactions_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DescribeTransactionsRequest`.
pub(in super::super) fn describe_transactions_request<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.compact_array(|w| w.compact_string())?; // transactional_ids
    w.unknown_tagged_fields()?;
    Ok(())
}
