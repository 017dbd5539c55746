//! Walker for kafka-protocol's `fetch_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `FetchPartition`.
pub(in super::super) fn fetch_partition<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(4)?; // partition
    if version >= 9 {
        w.fixed(4)?; // current_leader_epoch
    }
    w.fixed(8)?; // fetch_offset
    if version >= 12 {
        w.fixed(4)?; // last_fetched_epoch
    }
    if version >= 5 {
        w.fixed(8)?; // log_start_offset
    }
    w.fixed(4)?; // partition_max_bytes
    if version >= 12 {
        let num_tagged_fields = w.uvarint()?;
        for _ in 0..num_tagged_fields {
            let tag = w.tag()?;
            let size = w.uvarint()?;
            match tag {
                0 => {
                    if version >= 17 {
                        w.fixed(16)?; // replica_directory_id
                    } else {
                        return Err(w.invalid(version));
                    }
                }
                _ => {
                    w.skip(size as usize)?;
                }
            }
        }
    }
    Ok(())
}

/// Walks `FetchRequest`.
pub(in super::super) fn fetch_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    if version <= 14 {
        w.fixed(4)?; // replica_id
    }
    w.fixed(4)?; // max_wait_ms
    w.fixed(4)?; // min_bytes
    if version >= 3 {
        w.fixed(4)?; // max_bytes
    }
    if version >= 4 {
        w.fixed(1)?; // isolation_level
    }
    if version >= 7 {
        w.fixed(4)?; // session_id
    }
    if version >= 7 {
        w.fixed(4)?; // session_epoch
    }
    if version >= 12 {
        w.compact_array(|w| fetch_topic(w, version))?; // topics
    } else {
        w.array(|w| fetch_topic(w, version))?; // topics
    }
    if version >= 7 {
        if version >= 12 {
            w.compact_array(|w| forgotten_topic(w, version))?; // forgotten_topics_data
        } else {
            w.array(|w| forgotten_topic(w, version))?; // forgotten_topics_data
        }
    }
    if version >= 11 {
        if version >= 12 {
            w.compact_string()?; // rack_id
        } else {
            w.string()?; // rack_id
        }
    }
    if version >= 12 {
        let num_tagged_fields = w.uvarint()?;
        for _ in 0..num_tagged_fields {
            let tag = w.tag()?;
            let size = w.uvarint()?;
            match tag {
                0 => {
                    w.compact_string()?; // cluster_id
                }
                1 => {
                    if version >= 15 {
                        replica_state(w, version)?; // replica_state
                    } else {
                        return Err(w.invalid(version));
                    }
                }
                _ => {
                    w.skip(size as usize)?;
                }
            }
        }
    }
    Ok(())
}

/// Walks `FetchTopic`.
pub(in super::super) fn fetch_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    if version <= 12 {
        if version >= 12 {
            w.compact_string()?; // topic
        } else {
            w.string()?; // topic
        }
    }
    if version >= 13 {
        w.fixed(16)?; // topic_id
    }
    if version >= 12 {
        w.compact_array(|w| fetch_partition(w, version))?; // partitions
    } else {
        w.array(|w| fetch_partition(w, version))?; // partitions
    }
    if version >= 12 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `ForgottenTopic`.
pub(in super::super) fn forgotten_topic<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    if (7..=12).contains(&version) {
        if version >= 12 {
            w.compact_string()?; // topic
        } else {
            w.string()?; // topic
        }
    }
    if version >= 13 {
        w.fixed(16)?; // topic_id
    }
    if version >= 7 {
        if version >= 12 {
            w.compact_array(|w| w.fixed(4))?; // partitions
        } else {
            w.array(|w| w.fixed(4))?; // partitions
        }
    }
    if version >= 12 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}

/// Walks `ReplicaState`.
pub(in super::super) fn replica_state<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=17).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 15 {
        w.fixed(4)?; // replica_id
    }
    if version >= 15 {
        w.fixed(8)?; // replica_epoch
    }
    if version >= 12 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
