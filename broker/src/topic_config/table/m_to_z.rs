//! The topic config rows from `max.compaction.lag.ms` to `unclean.leader.election.enable`,
//! by name.

use super::super::{Mapping, Support, TimestampType};
use super::*;

pub(super) const ROWS: &[TopicConfig] = &[
    TopicConfig {
        key: key(
            "max.compaction.lag.ms",
            ConfigType::Long,
            Valid::AtLeast(1),
            LONG_MAX,
            "longest time a record stays uncompacted, whatever the dirty ratio",
        ),
        broker: Some("log.cleaner.max.compaction.lag.ms"),
        broker_default: true,
        support: Support::All,
        honoured: true,
        note: "honoured; also rolls the active segment of a compacted topic",
        mapping: Mapping::Field {
        apply: |c, v| c.log.max_compaction_lag_ms = v.number(),
        render: |c| c.log.max_compaction_lag_ms.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "max.message.bytes",
            ConfigType::Int,
            Valid::AtLeast(0),
            "1048588",
            "largest record batch the topic accepts",
        ),
        broker: Some("message.max.bytes"),
        broker_default: true,
        support: Support::All,
        honoured: true,
        note: "honoured",
        mapping: Mapping::Field {
        apply: |c, v| c.max_message_bytes = i32::try_from(v.number()).unwrap_or(i32::MAX),
        render: |c| c.max_message_bytes.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "message.timestamp.after.max.ms",
            ConfigType::Long,
            Valid::AtLeast(0),
            "3600000",
            "how far past the broker's clock a CreateTime timestamp may be",
        ),
        broker: Some("log.message.timestamp.after.max.ms"),
        broker_default: true,
        support: Support::All,
        honoured: true,
        note: "honoured: a later CreateTime record gets INVALID_TIMESTAMP (Kafka 4.0's default, KIP-1030)",
        mapping: Mapping::Field {
            apply: |c, v| c.timestamps.after_max_ms = v.number(),
            render: |c| c.timestamps.after_max_ms.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "message.timestamp.before.max.ms",
            ConfigType::Long,
            Valid::AtLeast(0),
            LONG_MAX,
            "how far behind the broker's clock a CreateTime timestamp may be",
        ),
        broker: Some("log.message.timestamp.before.max.ms"),
        broker_default: true,
        support: Support::All,
        honoured: true,
        note: "honoured: an older CreateTime record gets INVALID_TIMESTAMP",
        mapping: Mapping::Field {
            apply: |c, v| c.timestamps.before_max_ms = v.number(),
            render: |c| c.timestamps.before_max_ms.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "message.timestamp.type",
            ConfigType::String,
            Valid::OneOf(TIMESTAMP_TYPES),
            "CreateTime",
            "CreateTime keeps the producer's timestamps, LogAppendTime stamps the broker's",
        ),
        broker: Some("log.message.timestamp.type"),
        broker_default: true,
        support: Support::All,
        honoured: true,
        note: "honoured",
        mapping: Mapping::Field {
        apply: |c, v| {
            c.timestamp_type = match v.text() {
                "LogAppendTime" => TimestampType::LogAppendTime,
                _ => TimestampType::CreateTime,
            }
        },
        render: |c| timestamp_type_name(c.timestamp_type).into(),
        },
    },
    TopicConfig {
        key: key(
            "min.cleanable.dirty.ratio",
            ConfigType::Double,
            Valid::Fraction,
            "0.5",
            "share of a compacted log's bytes not yet cleaned at which the cleaner cleans it",
        ),
        broker: Some("log.cleaner.min.cleanable.ratio"),
        broker_default: true,
        support: Support::All,
        honoured: true,
        note: "honoured",
        mapping: Mapping::Field {
        apply: |c, v| c.log.min_cleanable_dirty_ratio = v.double(),
        render: |c| render_double(c.log.min_cleanable_dirty_ratio),
        },
    },
    TopicConfig {
        key: key(
            "min.compaction.lag.ms",
            ConfigType::Long,
            Valid::AtLeast(0),
            "0",
            "shortest time a record stays uncompacted",
        ),
        broker: Some("log.cleaner.min.compaction.lag.ms"),
        broker_default: true,
        support: Support::All,
        honoured: true,
        note: "honoured",
        mapping: Mapping::Field {
        apply: |c, v| c.log.min_compaction_lag_ms = v.number(),
        render: |c| c.log.min_compaction_lag_ms.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "min.insync.replicas",
            ConfigType::Int,
            Valid::AtLeast(1),
            "1",
            "replicas that must have a record for acks=all; a single node has one",
        ),
        broker: Some("min.insync.replicas"),
        broker_default: true,
        support: Support::Only(&["1"], "a single node has one replica"),
        honoured: true,
        note: "only 1: one replica",
        mapping: Mapping::Field {
        apply: |_, _| {},
        render: |_| "1".into(),
        },
    },
    TopicConfig {
        key: key(
            "preallocate",
            ConfigType::Boolean,
            Valid::Any,
            "false",
            "allocate a new segment's file at its full size",
        ),
        broker: Some("log.preallocate"),
        broker_default: true,
        support: Support::All,
        honoured: false,
        // Sluice's active segment is mapped at its capacity, so its file is sized so from
        // the start (`storage/segment.rs`), as Kafka's `preallocate=true` does (a sparse
        // `setLength` on Linux), and trimmed to its data when it rolls.
        note: "accepted: the active segment's blocks are always reserved ahead of its appends and the file trimmed when it rolls, much as Kafka's preallocate=true does",
        mapping: Mapping::Kept,
    },
    TopicConfig {
        key: key(
            "remote.log.copy.disable",
            ConfigType::Boolean,
            Valid::Any,
            "false",
            "stop copying a tiered topic's segments to remote storage",
        ),
        broker: None,
        broker_default: false,
        support: Support::All,
        honoured: false,
        note: NO_REMOTE_TIER,
        mapping: Mapping::Kept,
    },
    TopicConfig {
        key: key(
            "remote.log.delete.on.disable",
            ConfigType::Boolean,
            Valid::Any,
            "false",
            "delete a topic's remote segments when its tiering is turned off",
        ),
        broker: None,
        broker_default: false,
        support: Support::All,
        honoured: false,
        note: NO_REMOTE_TIER,
        mapping: Mapping::Kept,
    },
    TopicConfig {
        key: key(
            "remote.storage.enable",
            ConfigType::Boolean,
            Valid::Any,
            "false",
            "tier the topic's sealed segments to remote storage",
        ),
        broker: None,
        broker_default: false,
        // Kafka refuses `true` too while its broker's remote.log.storage.system.enable is
        // false, its default.
        support: Support::Only(
            &["false"],
            "remote log storage is not enabled on this broker (remote.log.storage.system.enable=false)",
        ),
        honoured: true,
        note: "only false: no remote tier, as a Kafka broker with remote.log.storage.system.enable=false",
        mapping: Mapping::Kept,
    },
    TopicConfig {
        key: key(
            "retention.bytes",
            ConfigType::Long,
            Valid::Any,
            "-1",
            "size past which the oldest segments of a partition are deleted; negative: no limit",
        ),
        broker: Some("log.retention.bytes"),
        broker_default: true,
        support: Support::All,
        honoured: true,
        note: "honoured",
        mapping: Mapping::Field {
        apply: |c, v| c.log.retention_bytes = v.number(),
        render: |c| c.log.retention_bytes.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "retention.ms",
            ConfigType::Long,
            Valid::AtLeast(-1),
            SEVEN_DAYS_MS,
            "age past which sealed segments are deleted; -1: no limit",
        ),
        broker: Some("log.retention.ms"),
        broker_default: false,
        support: Support::All,
        honoured: true,
        note: "honoured",
        mapping: Mapping::Field {
        apply: |c, v| c.log.retention_ms = v.number(),
        render: |c| c.log.retention_ms.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "segment.bytes",
            ConfigType::Int,
            Valid::AtLeast(SEGMENT_BYTES_MIN),
            BYTES_2_30,
            "size at which a segment rolls",
        ),
        broker: Some("log.segment.bytes"),
        broker_default: true,
        support: Support::All,
        // Storage runs with `sluice.internal.log.segment.bytes` instead when it is set
        // (`TopicDefaults::storage_log`); this row keeps the configured value.
        honoured: true,
        note: "honoured; Kafka 4.0's minimum of 1 MiB (KIP-1030; 3.9's was 14)",
        mapping: Mapping::Field {
        apply: |c, v| c.log.segment_bytes = v.number().unsigned_abs(),
        render: |c| c.log.segment_bytes.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "segment.index.bytes",
            ConfigType::Int,
            Valid::AtLeast(4),
            "10485760",
            "capacity of each index file; a segment rolls when its index is full",
        ),
        broker: Some("log.index.size.max.bytes"),
        broker_default: true,
        support: Support::All,
        // Up to 2 GiB is Kafka's range, and each active segment maps two indexes of this
        // size. The storage maps no more of it than a segment of `segment.bytes` can fill
        // (`capacities` in `storage/partition_log.rs`), so a large value costs no address
        // space beyond that; the value is kept and shown as given.
        honoured: true,
        note: "honoured; mapped only as far as a segment can fill it",
        mapping: Mapping::Field {
        apply: |c, v| c.log.segment_index_bytes = v.number().unsigned_abs(),
        render: |c| c.log.segment_index_bytes.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "segment.jitter.ms",
            ConfigType::Long,
            Valid::AtLeast(0),
            "0",
            "most a random amount by which segment.ms is shortened, to spread rolls",
        ),
        broker: Some("log.roll.jitter.ms"),
        broker_default: false,
        support: Support::All,
        honoured: true,
        note: "honoured: each segment rolls up to this much before segment.ms, by a jitter drawn per partition and segment",
        mapping: Mapping::Field {
            apply: |c, v| c.log.segment_jitter_ms = v.number(),
            render: |c| c.log.segment_jitter_ms.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "segment.ms",
            ConfigType::Long,
            Valid::AtLeast(1),
            SEVEN_DAYS_MS,
            "age at which a non-empty segment rolls",
        ),
        broker: Some("log.roll.ms"),
        broker_default: false,
        support: Support::All,
        honoured: true,
        note: "honoured",
        mapping: Mapping::Field {
        apply: |c, v| c.log.segment_ms = v.number(),
        render: |c| c.log.segment_ms.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "unclean.leader.election.enable",
            ConfigType::Boolean,
            Valid::Any,
            "false",
            "let a replica that is not in sync become leader",
        ),
        broker: Some("unclean.leader.election.enable"),
        broker_default: true,
        support: Support::All,
        honoured: false,
        note: "accepted: the one replica is always in sync",
        mapping: Mapping::Kept,
    },
];
