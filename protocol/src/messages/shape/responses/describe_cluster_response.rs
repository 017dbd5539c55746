//! Walker for kafka-protocol's `describe_cluster_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DescribeClusterBroker`.
pub(in super::super) fn describe_cluster_broker<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=1).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // broker_id
    w.compact_string()?; // host
    w.fixed(4)?; // port
    w.compact_string()?; // rack
    w.unknown_tagged_fields()?;
    Ok(())
}

/// Walks `DescribeClusterResponse`.
pub(in super::super) fn describe_cluster_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=1).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    w.fixed(2)?; // error_code
    w.compact_string()?; // error_message
    if version >= 1 {
        w.fixed(1)?; // endpoint_type
    }
    w.compact_string()?; // cluster_id
    w.fixed(4)?; // controller_id
    w.compact_array(|w| describe_cluster_broker(w, version))?; // brokers
    w.fixed(4)?; // cluster_authorized_operations
    w.unknown_tagged_fields()?;
    Ok(())
}
