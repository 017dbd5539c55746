//! Walker for kafka-protocol's `metadata_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `MetadataResponse`.
pub(in super::super) fn metadata_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=12).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        w.fixed(4)?; // throttle_time_ms
    }
    if version >= 9 {
        w.compact_array(|w| metadata_response_broker(w, version))?; // brokers
    } else {
        w.array(|w| metadata_response_broker(w, version))?; // brokers
    }
    if version >= 2 {
        if version >= 9 {
            w.compact_string()?; // cluster_id
        } else {
            w.string()?; // cluster_id
        }
    }
    if version >= 1 {
        w.fixed(4)?; // controller_id
    }
    if version >= 9 {
        w.compact_array(|w| metadata_response_topic(w, version))?; // topics
    } else {
        w.array(|w| metadata_response_topic(w, version))?; // topics
    }
    if (8..=10).contains(&version) {
        w.fixed(4)?; // cluster_authorized_operations
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `MetadataResponseBroker`.
pub(in super::super) fn metadata_response_broker<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=12).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // node_id
    if version >= 9 {
        w.compact_string()?; // host
    } else {
        w.string()?; // host
    }
    w.fixed(4)?; // port
    if version >= 1 {
        if version >= 9 {
            w.compact_string()?; // rack
        } else {
            w.string()?; // rack
        }
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `MetadataResponsePartition`.
pub(in super::super) fn metadata_response_partition<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=12).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(2)?; // error_code
    w.fixed(4)?; // partition_index
    w.fixed(4)?; // leader_id
    if version >= 7 {
        w.fixed(4)?; // leader_epoch
    }
    if version >= 9 {
        w.compact_array(|w| w.fixed(4))?; // replica_nodes
    } else {
        w.array(|w| w.fixed(4))?; // replica_nodes
    }
    if version >= 9 {
        w.compact_array(|w| w.fixed(4))?; // isr_nodes
    } else {
        w.array(|w| w.fixed(4))?; // isr_nodes
    }
    if version >= 5 {
        if version >= 9 {
            w.compact_array(|w| w.fixed(4))?; // offline_replicas
        } else {
            w.array(|w| w.fixed(4))?; // offline_replicas
        }
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `MetadataResponseTopic`.
pub(in super::super) fn metadata_response_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=12).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(2)?; // error_code
    if version >= 9 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 10 {
        w.fixed(16)?; // topic_id
    }
    if version >= 1 {
        w.boolean()?; // is_internal
    }
    if version >= 9 {
        w.compact_array(|w| metadata_response_partition(w, version))?; // partitions
    } else {
        w.array(|w| metadata_response_partition(w, version))?; // partitions
    }
    if version >= 8 {
        w.fixed(4)?; // topic_authorized_operations
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
