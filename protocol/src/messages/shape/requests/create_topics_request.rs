//! Walker for kafka-protocol's `create_topics_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `CreatableReplicaAssignment`.
pub(in super::super) fn creatable_replica_assignment<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=7).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    if version >= 5 {
        w.compact_array(|w| w.fixed(4))?; // broker_ids
    } else {
        w.array(|w| w.fixed(4))?; // broker_ids
    }
    if version >= 5 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `CreatableTopic`.
pub(in super::super) fn creatable_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=7).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 5 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    w.fixed(4)?; // num_partitions
    w.fixed(2)?; // replication_factor
    if version >= 5 {
        w.compact_array(|w| creatable_replica_assignment(w, version))?; // assignments
    } else {
        w.array(|w| creatable_replica_assignment(w, version))?; // assignments
    }
    if version >= 5 {
        w.compact_array(|w| creatable_topic_config(w, version))?; // configs
    } else {
        w.array(|w| creatable_topic_config(w, version))?; // configs
    }
    if version >= 5 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `CreatableTopicConfig`.
pub(in super::super) fn creatable_topic_config<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=7).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 5 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 5 {
        w.compact_string()?; // value
    } else {
        w.string()?; // value
    }
    if version >= 5 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `CreateTopicsRequest`.
pub(in super::super) fn create_topics_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=7).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 5 {
        w.compact_array(|w| creatable_topic(w, version))?; // topics
    } else {
        w.array(|w| creatable_topic(w, version))?; // topics
    }
    w.fixed(4)?; // timeout_ms
    if version >= 1 {
        w.boolean()?; // validate_only
    }
    if version >= 5 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
