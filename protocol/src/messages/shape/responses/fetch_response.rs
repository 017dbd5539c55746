//! Walker for kafka-protocol's `fetch_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `AbortedTransaction`.
pub(in super::super) fn aborted_transaction<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 4 {
        w.fixed(8)?; // producer_id
    }
    if version >= 4 {
        w.fixed(8)?; // first_offset
    }
    if version >= 12 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `EpochEndOffset`.
pub(in super::super) fn epoch_end_offset<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 12 {
        w.fixed(4)?; // epoch
    }
    if version >= 12 {
        w.fixed(8)?; // end_offset
    }
    if version >= 12 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `FetchResponse`.
pub(in super::super) fn fetch_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 1 {
        w.fixed(4)?; // throttle_time_ms
    }
    if version >= 7 {
        w.fixed(2)?; // error_code
    }
    if version >= 7 {
        w.fixed(4)?; // session_id
    }
    if version >= 12 {
        w.compact_array(|w| fetchable_topic_response(w, version))?; // responses
    } else {
        w.array(|w| fetchable_topic_response(w, version))?; // responses
    }
    if version >= 12 {
        let num_tagged_fields = w.uvarint()?;
        for _ in 0..num_tagged_fields {
            let tag = w.tag()?;
            let size = w.uvarint()?;
            match tag {
                0 => {
                    if version >= 16 {
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

/// Walks `FetchableTopicResponse`.
pub(in super::super) fn fetchable_topic_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    if version <= 12 {
        if version >= 12 {
            w.compact_string()?; // topic
        } else {
            w.string()?; // topic
        }
    }
    if version >= 13 {
        w.fixed(16)?; // topic_id
    }
    if version >= 12 {
        w.compact_array(|w| partition_data(w, version))?; // partitions
    } else {
        w.array(|w| partition_data(w, version))?; // partitions
    }
    if version >= 12 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `LeaderIdAndEpoch`.
pub(in super::super) fn leader_id_and_epoch<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 12 {
        w.fixed(4)?; // leader_id
    }
    if version >= 12 {
        w.fixed(4)?; // leader_epoch
    }
    if version >= 12 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `NodeEndpoint`.
pub(in super::super) fn node_endpoint<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 16 {
        w.fixed(4)?; // node_id
    }
    if version >= 16 {
        w.compact_string()?; // host
    }
    if version >= 16 {
        w.fixed(4)?; // port
    }
    if version >= 16 {
        w.compact_string()?; // rack
    }
    if version >= 12 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `PartitionData`.
pub(in super::super) fn partition_data<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    w.fixed(2)?; // error_code
    w.fixed(8)?; // high_watermark
    if version >= 4 {
        w.fixed(8)?; // last_stable_offset
    }
    if version >= 5 {
        w.fixed(8)?; // log_start_offset
    }
    if version >= 4 {
        if version >= 12 {
            w.compact_array(|w| aborted_transaction(w, version))?; // aborted_transactions
        } else {
            w.array(|w| aborted_transaction(w, version))?; // aborted_transactions
        }
    }
    if version >= 11 {
        w.fixed(4)?; // preferred_read_replica
    }
    if version >= 12 {
        w.compact_bytes()?; // records
    } else {
        w.bytes()?; // records
    }
    if version >= 12 {
        let num_tagged_fields = w.uvarint()?;
        for _ in 0..num_tagged_fields {
            let tag = w.tag()?;
            let size = w.uvarint()?;
            match tag {
                0 => {
                    epoch_end_offset(w, version)?; // diverging_epoch
                }
                1 => {
                    leader_id_and_epoch(w, version)?; // current_leader
                }
                2 => {
                    snapshot_id(w, version)?; // snapshot_id
                }
                _ => {
                    w.skip(size as usize)?;
                }
            }
        }
    }
    Ok(())
}

/// Walks `SnapshotId`.
pub(in super::super) fn snapshot_id<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(8)?; // end_offset
    w.fixed(4)?; // epoch
    if version >= 12 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
