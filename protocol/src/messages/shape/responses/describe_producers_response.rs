//! Walker for kafka-protocol's `describe_producers_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DescribeProducersResponse`.
pub(in super::super) fn describe_producers_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    w.compact_array(|w| topic_response(w, version))?; // topics
    w.unknown_tagged_fields()?;
    Ok(())
}

/// Walks `PartitionResponse`.
pub(in super::super) fn partition_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    w.fixed(2)?; // error_code
    w.compact_string()?; // error_message
    w.compact_array(|w| producer_state(w, version))?; // active_producers
    w.unknown_tagged_fields()?;
    Ok(())
}

/// Walks `ProducerState`.
pub(in super::super) fn producer_state<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.fixed(8)?; // producer_id
    w.fixed(4)?; // producer_epoch
    w.fixed(4)?; // last_sequence
    w.fixed(8)?; // last_timestamp
    w.fixed(4)?; // coordinator_epoch
    w.fixed(8)?; // current_txn_start_offset
    w.unknown_tagged_fields()?;
    Ok(())
}

/// Walks `TopicResponse`.
pub(in super::super) fn topic_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.compact_string()?; // name
    w.compact_array(|w| partition_response(w, version))?; // partitions
    w.unknown_tagged_fields()?;
    Ok(())
}
