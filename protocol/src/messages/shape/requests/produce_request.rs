//! Walker for kafka-protocol's `produce_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `PartitionProduceData`.
pub(in super::super) fn partition_produce_data<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=11).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // index
    if version >= 9 {
        w.compact_bytes()?; // records
    } else {
        w.bytes()?; // records
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `ProduceRequest`.
pub(in super::super) fn produce_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=11).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        if version >= 9 {
            w.compact_string()?; // transactional_id
        } else {
            w.string()?; // transactional_id
        }
    }
    w.fixed(2)?; // acks
    w.fixed(4)?; // timeout_ms
    if version >= 9 {
        w.compact_array(|w| topic_produce_data(w, version))?; // topic_data
    } else {
        w.array(|w| topic_produce_data(w, version))?; // topic_data
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `TopicProduceData`.
pub(in super::super) fn topic_produce_data<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=11).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 9 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 9 {
        w.compact_array(|w| partition_produce_data(w, version))?; // partition_data
    } else {
        w.array(|w| partition_produce_data(w, version))?; // partition_data
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
