//! Walker for kafka-protocol's `describe_configs_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DescribeConfigsResourceResult`.
pub(in super::super) fn describe_configs_resource_result<W: Visitor>(
    w: &mut W,
    version: i16,
) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 4 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 4 {
        w.compact_string()?; // value
    } else {
        w.string()?; // value
    }
    w.boolean()?; // read_only
    if version == 0 {
        w.boolean()?; // is_default
    }
    if version >= 1 {
        w.fixed(1)?; // config_source
    }
    w.boolean()?; // is_sensitive
    if version >= 1 {
        if version >= 4 {
            w.compact_array(|w| describe_configs_synonym(w, version))?; // synonyms
        } else {
            w.array(|w| describe_configs_synonym(w, version))?; // synonyms
        }
    }
    if version >= 3 {
        w.fixed(1)?; // config_type
    }
    if version >= 3 {
        if version >= 4 {
            w.compact_string()?; // documentation
        } else {
            w.string()?; // documentation
        }
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DescribeConfigsResponse`.
pub(in super::super) fn describe_configs_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    if version >= 4 {
        w.compact_array(|w| describe_configs_result(w, version))?; // results
    } else {
        w.array(|w| describe_configs_result(w, version))?; // results
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DescribeConfigsResult`.
pub(in super::super) fn describe_configs_result<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(2)?; // error_code
    if version >= 4 {
        w.compact_string()?; // error_message
    } else {
        w.string()?; // error_message
    }
    w.fixed(1)?; // resource_type
    if version >= 4 {
        w.compact_string()?; // resource_name
    } else {
        w.string()?; // resource_name
    }
    if version >= 4 {
        w.compact_array(|w| describe_configs_resource_result(w, version))?; // configs
    } else {
        w.array(|w| describe_configs_resource_result(w, version))?; // configs
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DescribeConfigsSynonym`.
pub(in super::super) fn describe_configs_synonym<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 1 {
        if version >= 4 {
            w.compact_string()?; // name
        } else {
            w.string()?; // name
        }
    }
    if version >= 1 {
        if version >= 4 {
            w.compact_string()?; // value
        } else {
            w.string()?; // value
        }
    }
    if version >= 1 {
        w.fixed(1)?; // source
    }
    if version >= 4 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
