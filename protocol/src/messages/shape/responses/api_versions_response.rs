//! Walker for kafka-protocol's `api_versions_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `ApiVersion`.
pub(in super::super) fn api_version<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(2)?; // api_key
    w.fixed(2)?; // min_version
    w.fixed(2)?; // max_version
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `ApiVersionsResponse`.
pub(in super::super) fn api_versions_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(2)?; // error_code
    if version >= 3 {
        w.compact_array(|w| api_version(w, version))?; // api_keys
    } else {
        w.array(|w| api_version(w, version))?; // api_keys
    }
    if version >= 1 {
        w.fixed(4)?; // throttle_time_ms
    }
    if version >= 3 {
        let num_tagged_fields = w.uvarint()?;
        for _ in 0..num_tagged_fields {
            let tag = w.tag()?;
            let size = w.uvarint()?;
            match tag {
                0 => {
                    w.compact_array(|w| supported_feature_key(w, version))?; // supported_features
                }
                1 => {
                    w.fixed(8)?; // finalized_features_epoch
                }
                2 => {
                    w.compact_array(|w| finalized_feature_key(w, version))?; // finalized_features
                }
                3 => {
                    w.boolean()?; // zk_migration_ready
                }
                _ => {
                    w.skip(size as usize)?;
                }
            }
        }
    }
    Ok(())
}

/// Walks `FinalizedFeatureKey`.
pub(in super::super) fn finalized_feature_key<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        w.compact_string()?; // name
    }
    if version >= 3 {
        w.fixed(2)?; // max_version_level
    }
    if version >= 3 {
        w.fixed(2)?; // min_version_level
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `SupportedFeatureKey`.
pub(in super::super) fn supported_feature_key<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        w.compact_string()?; // name
    }
    if version >= 3 {
        w.fixed(2)?; // min_version
    }
    if version >= 3 {
        w.fixed(2)?; // max_version
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
