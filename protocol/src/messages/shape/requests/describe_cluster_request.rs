//! Walker for kafka-protocol's `describe_cluster_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DescribeClusterRequest`.
pub(in super::super) fn describe_cluster_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=1).contains(&version) {
        return Err(w.invalid(version));
    }
    w.boolean()?; // include_cluster_authorized_operations
    if version >= 1 {
        w.fixed(1)?; // endpoint_type
    }
    w.unknown_tagged_fields()?;
    Ok(())
}
