//! Walker for kafka-protocol's `describe_configs_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DescribeConfigsRequest`.
pub(in super::super) fn describe_configs_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 4 {
        w.compact_array(|w| describe_configs_resource(w, version))?; // resources
    } else {
        w.array(|w| describe_configs_resource(w, version))?; // resources
    }
    if version >= 1 {
        w.boolean()?; // include_synonyms
    }
    if version >= 3 {
        w.boolean()?; // include_documentation
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DescribeConfigsResource`.
pub(in super::super) fn describe_configs_resource<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(1)?; // resource_type
    if version >= 4 {
        w.compact_string()?; // resource_name
    } else {
        w.string()?; // resource_name
    }
    if version >= 4 {
        w.compact_array(|w| w.compact_string())?; // configuration_keys
    } else {
        w.array(|w| w.string())?; // configuration_keys
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
