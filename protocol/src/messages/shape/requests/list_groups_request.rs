//! Walker for kafka-protocol's `list_groups_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `ListGroupsRequest`.
pub(in super::super) fn list_groups_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=5).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 4 {
        w.compact_array(|w| w.compact_string())?; // states_filter
    }
    if version >= 5 {
        w.compact_array(|w| w.compact_string())?; // types_filter
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
