//! Walker for kafka-protocol's `describe_log_dirs_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `DescribeLogDirsPartition`.
pub(in super::super) fn describe_log_dirs_partition<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition_index
    w.fixed(8)?; // partition_size
    w.fixed(8)?; // offset_lag
    w.boolean()?; // is_future_key
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DescribeLogDirsResponse`.
pub(in super::super) fn describe_log_dirs_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // throttle_time_ms
    if version >= 3 {
        w.fixed(2)?; // error_code
    }
    if version >= 2 {
        w.compact_array(|w| describe_log_dirs_result(w, version))?; // results
    } else {
        w.array(|w| describe_log_dirs_result(w, version))?; // results
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DescribeLogDirsResult`.
pub(in super::super) fn describe_log_dirs_result<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(2)?; // error_code
    if version >= 2 {
        w.compact_string()?; // log_dir
    } else {
        w.string()?; // log_dir
    }
    if version >= 2 {
        w.compact_array(|w| describe_log_dirs_topic(w, version))?; // topics
    } else {
        w.array(|w| describe_log_dirs_topic(w, version))?; // topics
    }
    if version >= 4 {
        w.fixed(8)?; // total_bytes
    }
    if version >= 4 {
        w.fixed(8)?; // usable_bytes
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `DescribeLogDirsTopic`.
pub(in super::super) fn describe_log_dirs_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_string()?; // name
    } else {
        w.string()?; // name
    }
    if version >= 2 {
        w.compact_array(|w| describe_log_dirs_partition(w, version))?; // partitions
    } else {
        w.array(|w| describe_log_dirs_partition(w, version))?; // partitions
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
