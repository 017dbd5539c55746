//! Walker for kafka-protocol's `delete_groups_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DeletableGroupResult`.
pub(in super::super) fn deletable_group_result<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_string()?; // group_id
    } else {
        w.string()?; // group_id
    }
    w.fixed(2)?; // error_code
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DeleteGroupsResponse`.
pub(in super::super) fn delete_groups_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    if version >= 2 {
        w.compact_array(|w| deletable_group_result(w, version))?; // results
    } else {
        w.array(|w| deletable_group_result(w, version))?; // results
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
