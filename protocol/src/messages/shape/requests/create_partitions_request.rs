//! Walker for kafka-protocol's `create_partitions_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `CreatePartitionsAssignment`.
pub(in super::super) fn create_partitions_assignment<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=3).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_array(|w| w.fixed(4))?; // broker_ids
    } else {
        w.array(|w| w.fixed(4))?; // broker_ids
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `CreatePartitionsRequest`.
pub(in super::super) fn create_partitions_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=3).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_array(|w| create_partitions_topic(w, version))?; // topics
    } else {
        w.array(|w| create_partitions_topic(w, version))?; // topics
    }
    w.fixed(4)?; // timeout_ms
    w.boolean()?; // validate_only
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `CreatePartitionsTopic`.
pub(in super::super) fn create_partitions_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=3).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    w.fixed(4)?; // count
    if version >= 2 {
        w.compact_array(|w| create_partitions_assignment(w, version))?; // assignments
    } else {
        w.array(|w| create_partitions_assignment(w, version))?; // assignments
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
