//! Walker for kafka-protocol's `describe_producers_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DescribeProducersRequest`.
pub(in super::super) fn describe_producers_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.compact_array(|w| topic_request(w, version))?; // topics
    w.unknown_tagged_fields()?;
    Ok(())
}

/// Walks `TopicRequest`.
pub(in super::super) fn topic_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.compact_string()?; // name
    w.compact_array(|w| w.fixed(4))?; // partition_indexes
    w.unknown_tagged_fields()?;
    Ok(())
}
