//! Walker for kafka-protocol's `produce_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `BatchIndexAndErrorMessage`.
pub(in super::super) fn batch_index_and_error_message<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=11).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 8 {
        w.fixed(4)?; // batch_index
    }
    if version >= 8 {
        if version >= 9 {
            w.compact_string()?; // batch_index_error_message
        } else {
            w.string()?; // batch_index_error_message
        }
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `LeaderIdAndEpoch`.
pub(in super::super) fn leader_id_and_epoch<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=11).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 10 {
        w.fixed(4)?; // leader_id
    }
    if version >= 10 {
        w.fixed(4)?; // leader_epoch
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `NodeEndpoint`.
pub(in super::super) fn node_endpoint<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=11).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 10 {
        w.fixed(4)?; // node_id
    }
    if version >= 10 {
        w.compact_string()?; // host
    }
    if version >= 10 {
        w.fixed(4)?; // port
    }
    if version >= 10 {
        w.compact_string()?; // rack
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `PartitionProduceResponse`.
pub(in super::super) fn partition_produce_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=11).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // index
    w.fixed(2)?; // error_code
    w.fixed(8)?; // base_offset
    if version >= 2 {
        w.fixed(8)?; // log_append_time_ms
    }
    if version >= 5 {
        w.fixed(8)?; // log_start_offset
    }
    if version >= 8 {
        if version >= 9 {
            w.compact_array(|w| batch_index_and_error_message(w, version))?; // record_errors
        } else {
            w.array(|w| batch_index_and_error_message(w, version))?; // record_errors
        }
    }
    if version >= 8 {
        if version >= 9 {
            w.compact_string()?; // error_message
        } else {
            w.string()?; // error_message
        }
    }
    if version >= 9 {
        let num_tagged_fields = w.uvarint()?;
        for _ in 0..num_tagged_fields {
            let tag = w.tag()?;
            let size = w.uvarint()?;
            match tag {
                0 => {
                    if version >= 10 {
                        leader_id_and_epoch(w, version)?; // current_leader
                    } else {
                        return Err(w.invalid(version));
                    }
                }
                _ => {
                    w.skip(size as usize)?;
                }
            }
        }
    }
    Ok(())
}

/// Walks `ProduceResponse`.
pub(in super::super) fn produce_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=11).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 9 {
        w.compact_array(|w| topic_produce_response(w, version))?; // responses
    } else {
        w.array(|w| topic_produce_response(w, version))?; // responses
    }
    if version >= 1 {
        w.fixed(4)?; // throttle_time_ms
    }
    if version >= 9 {
        let num_tagged_fields = w.uvarint()?;
        for _ in 0..num_tagged_fields {
            let tag = w.tag()?;
            let size = w.uvarint()?;
            match tag {
                0 => {
                    if version >= 10 {
                        w.compact_array(|w| node_endpoint(w, version))?; // node_endpoints
                    } else {
                        return Err(w.invalid(version));
                    }
                }
                _ => {
                    w.skip(size as usize)?;
                }
            }
        }
    }
    Ok(())
}

/// Walks `TopicProduceResponse`.
pub(in super::super) fn topic_produce_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=11).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 9 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 9 {
        w.compact_array(|w| partition_produce_response(w, version))?; // partition_responses
    } else {
        w.array(|w| partition_produce_response(w, version))?; // partition_responses
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
