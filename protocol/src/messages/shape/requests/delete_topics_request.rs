//! Walker for kafka-protocol's `delete_topics_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DeleteTopicState`.
pub(in super::super) fn delete_topic_state<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=6).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 6 {
        w.compact_string()?; // name
    }
    if version >= 6 {
        w.fixed(16)?; // topic_id
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DeleteTopicsRequest`.
pub(in super::super) fn delete_topics_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=6).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 6 {
        w.compact_array(|w| delete_topic_state(w, version))?; // topics
    }
    if version <= 5 {
        if version >= 4 {
            w.compact_array(|w| w.compact_string())?; // topic_names
        } else {
            w.array(|w| w.string())?; // topic_names
        }
    }
    w.fixed(4)?; // timeout_ms
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
