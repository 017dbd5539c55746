//! Walker for kafka-protocol's `add_partitions_to_txn_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `AddPartitionsToTxnRequest`.
pub(in super::super) fn add_partitions_to_txn_request<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 4 {
        w.compact_array(|w| add_partitions_to_txn_transaction(w, version))?; // transactions
    }
    if version <= 3 {
        if version >= 3 {
            w.compact_string()?; // v3_and_below_transactional_id
        } else {
            w.string()?; // v3_and_below_transactional_id
        }
    }
    if version <= 3 {
        w.fixed(8)?; // v3_and_below_producer_id
    }
    if version <= 3 {
        w.fixed(2)?; // v3_and_below_producer_epoch
    }
    if version <= 3 {
        if version >= 3 {
            w.compact_array(|w| add_partitions_to_txn_topic(w, version))?; // v3_and_below_topics
        } else {
            w.array(|w| add_partitions_to_txn_topic(w, version))?; // v3_and_below_topics
        }
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `AddPartitionsToTxnTopic`.
pub(in super::super) fn add_partitions_to_txn_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 3 {
        w.compact_array(|w| w.fixed(4))?; // partitions
    } else {
        w.array(|w| w.fixed(4))?; // partitions
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `AddPartitionsToTxnTransaction`.
pub(in super::super) fn add_partitions_to_txn_transaction<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 4 {
        w.compact_string()?; // transactional_id
    }
    if version >= 4 {
        w.fixed(8)?; // producer_id
    }
    if version >= 4 {
        w.fixed(2)?; // producer_epoch
    }
    if version >= 4 {
        w.boolean()?; // verify_only
    }
    if version >= 4 {
        w.compact_array(|w| add_partitions_to_txn_topic(w, version))?; // topics
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
