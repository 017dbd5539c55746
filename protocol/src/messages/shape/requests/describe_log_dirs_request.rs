//! Walker for kafka-protocol's `describe_log_dirs_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DescribableLogDirTopic`.
pub(in super::super) fn describable_log_dir_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_string()?; // topic
    } else {
        w.string()?; // topic
    }
    if version >= 2 {
        w.compact_array(|w| w.fixed(4))?; // partitions
    } else {
        w.array(|w| w.fixed(4))?; // partitions
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DescribeLogDirsRequest`.
pub(in super::super) fn describe_log_dirs_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_array(|w| describable_log_dir_topic(w, version))?; // topics
    } else {
        w.array(|w| describable_log_dir_topic(w, version))?; // topics
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
