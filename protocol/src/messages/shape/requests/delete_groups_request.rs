//! Walker for kafka-protocol's `delete_groups_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DeleteGroupsRequest`.
pub(in super::super) fn delete_groups_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_array(|w| w.compact_string())?; // groups_names
    } else {
        w.array(|w| w.string())?; // groups_names
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
