//! Walker for kafka-protocol's `add_partitions_to_txn_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `AddPartitionsToTxnPartitionResult`.
pub(in super::super) fn add_partitions_to_txn_partition_result<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    w.fixed(2)?; // partition_error_code
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `AddPartitionsToTxnResponse`.
pub(in super::super) fn add_partitions_to_txn_response<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    if version >= 4 {
        w.fixed(2)?; // error_code
    }
    if version >= 4 {
        w.compact_array(|w| add_partitions_to_txn_result(w, version))?; // results_by_transaction
    }
    if version <= 3 {
        if version >= 3 {
            w.compact_array(|w| add_partitions_to_txn_topic_result(w, version))?;
        // results_by_topic_v3_and_below
        } else {
            w.array(|w| add_partitions_to_txn_topic_result(w, version))?; // results_by_topic_v3_and_below
        }
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `AddPartitionsToTxnResult`.
pub(in super::super) fn add_partitions_to_txn_result<W: Visitor>(
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
        w.compact_array(|w| add_partitions_to_txn_topic_result(w, version))?; // topic_results
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `AddPartitionsToTxnTopicResult`.
pub(in super::super) fn add_partitions_to_txn_topic_result<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 3 {
        w.compact_array(|w| add_partitions_to_txn_partition_result(w, version))?;
        // results_by_partition
    } else {
        w.array(|w| add_partitions_to_txn_partition_result(w, version))?; // results_by_partition
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
