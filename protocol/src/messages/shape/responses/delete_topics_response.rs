//! Walker for kafka-protocol's `delete_topics_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DeletableTopicResult`.
pub(in super::super) fn deletable_topic_result<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=6).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 4 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 6 {
        w.fixed(16)?; // topic_id
    }
    w.fixed(2)?; // error_code
    if version >= 5 {
        w.compact_string()?; // error_message
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DeleteTopicsResponse`.
pub(in super::super) fn delete_topics_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=6).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 1 {
        w.fixed(4)?; // throttle_time_ms
    }
    if version >= 4 {
        w.compact_array(|w| deletable_topic_result(w, version))?; // responses
    } else {
        w.array(|w| deletable_topic_result(w, version))?; // responses
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
