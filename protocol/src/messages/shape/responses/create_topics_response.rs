//! Walker for kafka-protocol's `create_topics_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `CreatableTopicConfigs`.
pub(in super::super) fn creatable_topic_configs<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=7).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 5 {
        w.compact_string()?; // name
    }
    if version >= 5 {
        w.compact_string()?; // value
    }
    if version >= 5 {
        w.boolean()?; // read_only
    }
    if version >= 5 {
        w.fixed(1)?; // config_source
    }
    if version >= 5 {
        w.boolean()?; // is_sensitive
    }
    if version >= 5 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `CreatableTopicResult`.
pub(in super::super) fn creatable_topic_result<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=7).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 5 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 7 {
        w.fixed(16)?; // topic_id
    }
    w.fixed(2)?; // error_code
    if version >= 1 {
        if version >= 5 {
            w.compact_string()?; // error_message
        } else {
            w.string()?; // error_message
        }
    }
    if version >= 5 {
        w.fixed(4)?; // num_partitions
    }
    if version >= 5 {
        w.fixed(2)?; // replication_factor
    }
    if version >= 5 {
        w.compact_array(|w| creatable_topic_configs(w, version))?; // configs
    }
    if version >= 5 {
        let num_tagged_fields = w.uvarint()?;
        for _ in 0..num_tagged_fields {
            let tag = w.tag()?;
            let size = w.uvarint()?;
            match tag {
                0 => {
                    w.fixed(2)?; // topic_config_error_code
                }
                _ => {
                    w.skip(size as usize)?;
                }
            }
        }
    }
    Ok(())
}

/// Walks `CreateTopicsResponse`.
pub(in super::super) fn create_topics_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=7).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.fixed(4)?; // throttle_time_ms
    }
    if version >= 5 {
        w.compact_array(|w| creatable_topic_result(w, version))?; // topics
    } else {
        w.array(|w| creatable_topic_result(w, version))?; // topics
    }
    if version >= 5 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
