//! Walker for kafka-protocol's `alter_configs_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `AlterConfigsRequest`.
pub(in super::super) fn alter_configs_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_array(|w| alter_configs_resource(w, version))?; // resources
    } else {
        w.array(|w| alter_configs_resource(w, version))?; // resources
    }
    w.boolean()?; // validate_only
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `AlterConfigsResource`.
pub(in super::super) fn alter_configs_resource<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(1)?; // resource_type
    if version >= 2 {
        w.compact_string()?; // resource_name
    } else {
        w.string()?; // resource_name
    }
    if version >= 2 {
        w.compact_array(|w| alterable_config(w, version))?; // configs
    } else {
        w.array(|w| alterable_config(w, version))?; // configs
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `AlterableConfig`.
pub(in super::super) fn alterable_config<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 2 {
        w.compact_string()?; // value
    } else {
        w.string()?; // value
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
