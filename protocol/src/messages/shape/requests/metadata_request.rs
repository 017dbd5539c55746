//! Walker for kafka-protocol's `metadata_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `MetadataRequest`.
pub(in super::super) fn metadata_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=12).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 9 {
        w.compact_array(|w| metadata_request_topic(w, version))?; // topics
    } else {
        w.array(|w| metadata_request_topic(w, version))?; // topics
    }
    if version >= 4 {
        w.boolean()?; // allow_auto_topic_creation
    }
    if (8..=10).contains(&version) {
        w.boolean()?; // include_cluster_authorized_operations
    }
    if version >= 8 {
        w.boolean()?; // include_topic_authorized_operations
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `MetadataRequestTopic`.
pub(in super::super) fn metadata_request_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=12).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 10 {
        w.fixed(16)?; // topic_id
    }
    if version >= 9 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 9 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
