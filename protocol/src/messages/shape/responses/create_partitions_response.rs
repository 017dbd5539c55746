//! Walker for kafka-protocol's `create_partitions_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `CreatePartitionsResponse`.
pub(in super::super) fn create_partitions_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=3).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    if version >= 2 {
        w.compact_array(|w| create_partitions_topic_result(w, version))?; // results
    } else {
        w.array(|w| create_partitions_topic_result(w, version))?; // results
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `CreatePartitionsTopicResult`.
pub(in super::super) fn create_partitions_topic_result<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=3).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    w.fixed(2)?; // error_code
    if version >= 2 {
        w.compact_string()?; // error_message
    } else {
        w.string()?; // error_message
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
