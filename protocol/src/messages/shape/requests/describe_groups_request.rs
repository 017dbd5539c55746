//! Walker for kafka-protocol's `describe_groups_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DescribeGroupsRequest`.
pub(in super::super) fn describe_groups_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 5 {
        w.compact_array(|w| w.compact_string())?; // groups
    } else {
        w.array(|w| w.string())?; // groups
    }
    if version >= 3 {
        w.boolean()?; // include_authorized_operations
    }
    if version >= 5 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
