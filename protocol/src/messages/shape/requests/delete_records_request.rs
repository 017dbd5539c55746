//! Walker for kafka-protocol's `delete_records_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DeleteRecordsPartition`.
pub(in super::super) fn delete_records_partition<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    w.fixed(8)?; // offset
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DeleteRecordsRequest`.
pub(in super::super) fn delete_records_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_array(|w| delete_records_topic(w, version))?; // topics
    } else {
        w.array(|w| delete_records_topic(w, version))?; // topics
    }
    w.fixed(4)?; // timeout_ms
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DeleteRecordsTopic`.
pub(in super::super) fn delete_records_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 2 {
        w.compact_array(|w| delete_records_partition(w, version))?; // partitions
    } else {
        w.array(|w| delete_records_partition(w, version))?; // partitions
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
