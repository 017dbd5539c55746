//! Walker for kafka-protocol's `delete_records_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DeleteRecordsPartitionResult`.
pub(in super::super) fn delete_records_partition_result<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    w.fixed(8)?; // low_watermark
    w.fixed(2)?; // error_code
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DeleteRecordsResponse`.
pub(in super::super) fn delete_records_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    if version >= 2 {
        w.compact_array(|w| delete_records_topic_result(w, version))?; // topics
    } else {
        w.array(|w| delete_records_topic_result(w, version))?; // topics
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DeleteRecordsTopicResult`.
pub(in super::super) fn delete_records_topic_result<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 2 {
        w.compact_array(|w| delete_records_partition_result(w, version))?; // partitions
    } else {
        w.array(|w| delete_records_partition_result(w, version))?; // partitions
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
