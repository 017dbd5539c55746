//! Walker for kafka-protocol's `offset_delete_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `OffsetDeleteResponse`.
pub(in super::super) fn offset_delete_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.fixed(2)?; // error_code
    w.fixed(4)?; // throttle_time_ms
    w.array(|w| offset_delete_response_topic(w, version))?; // topics
    Ok(())
}

/// Walks `OffsetDeleteResponsePartition`.
pub(in super::super) fn offset_delete_response_partition<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    w.fixed(2)?; // error_code
    Ok(())
}

/// Walks `OffsetDeleteResponseTopic`.
pub(in super::super) fn offset_delete_response_topic<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if version != 0 {
        return Err(w.invalid(version));
    }
    w.string()?; // name
    w.array(|w| offset_delete_response_partition(w, version))?; // partitions
    Ok(())
}
