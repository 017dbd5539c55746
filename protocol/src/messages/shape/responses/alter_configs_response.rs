//! Walker for kafka-protocol's `alter_configs_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `AlterConfigsResourceResponse`.
pub(in super::super) fn alter_configs_resource_response<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(2)?; // error_code
    if version >= 2 {
        w.compact_string()?; // error_message
    } else {
        w.string()?; // error_message
    }
    w.fixed(1)?; // resource_type
    if version >= 2 {
        w.compact_string()?; // resource_name
    } else {
        w.string()?; // resource_name
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `AlterConfigsResponse`.
pub(in super::super) fn alter_configs_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    if version >= 2 {
        w.compact_array(|w| alter_configs_resource_response(w, version))?; // responses
    } else {
        w.array(|w| alter_configs_resource_response(w, version))?; // responses
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
