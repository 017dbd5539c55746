//! The topic config rows from `cleanup.policy` to `local.retention.ms`, by name.

use super::super::{Mapping, Support};
use super::*;

pub(super) const ROWS: &[TopicConfig] = &[
    TopicConfig {
        key: key(
            "cleanup.policy",
            ConfigType::List,
            Valid::ListOf(CLEANUP_POLICIES),
            "delete",
            "delete old segments past retention, compact to the latest record per key, or both",
        ),
        broker: Some("log.cleanup.policy"),
        broker_default: true,
        support: Support::NonEmpty(
            "an empty policy is not supported: retention would still delete",
        ),
        honoured: true,
        note: "`compact` runs the log cleaner, `delete` retention, both both; empty refused",
        mapping: Mapping::Field {
        apply: |c, v| {
            c.cleanup_policy = v.render();
            c.log.cleanup_delete = v.has_item("delete");
            c.log.cleanup_compact = v.has_item("compact");
        },
        render: |c| c.cleanup_policy.clone(),
        },
    },
    TopicConfig {
        key: key(
            "compression.gzip.level",
            ConfigType::Int,
            Valid::GzipLevel,
            "-1",
            "gzip level the broker would recompress with; -1: the codec's default",
        ),
        broker: Some("compression.gzip.level"),
        broker_default: true,
        support: Support::All,
        honoured: false,
        note: NOT_RECOMPRESSED,
        mapping: Mapping::Kept,
    },
    TopicConfig {
        key: key(
            "compression.lz4.level",
            ConfigType::Int,
            Valid::Between(1, 17),
            "9",
            "lz4 level the broker would recompress with",
        ),
        broker: Some("compression.lz4.level"),
        broker_default: true,
        support: Support::All,
        honoured: false,
        note: NOT_RECOMPRESSED,
        mapping: Mapping::Kept,
    },
    TopicConfig {
        key: key(
            "compression.type",
            ConfigType::String,
            Valid::OneOf(COMPRESSION_TYPES),
            "producer",
            "batches are stored as the producer compressed them",
        ),
        broker: Some("compression.type"),
        broker_default: true,
        support: Support::Only(&["producer"], "batches are stored as produced: only `producer`"),
        honoured: true,
        note: "only `producer`: batches are stored as sent",
        mapping: Mapping::Field {
        apply: |_, _| {},
        render: |_| "producer".into(),
        },
    },
    TopicConfig {
        key: key(
            "compression.zstd.level",
            ConfigType::Int,
            Valid::Between(-131_072, 22),
            "3",
            "zstd level the broker would recompress with",
        ),
        broker: Some("compression.zstd.level"),
        broker_default: true,
        support: Support::All,
        honoured: false,
        note: NOT_RECOMPRESSED,
        mapping: Mapping::Kept,
    },
    TopicConfig {
        key: key(
            "delete.retention.ms",
            ConfigType::Long,
            Valid::AtLeast(0),
            "86400000",
            "how long a tombstone of a compacted topic stays readable after it was first cleaned",
        ),
        broker: Some("log.cleaner.delete.retention.ms"),
        broker_default: true,
        support: Support::All,
        honoured: true,
        note: "honoured: how long a tombstone stays after its first cleaning",
        mapping: Mapping::Field {
        apply: |c, v| c.log.delete_retention_ms = v.number(),
        render: |c| c.log.delete_retention_ms.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "file.delete.delay.ms",
            ConfigType::Long,
            Valid::AtLeast(0),
            "60000",
            "how long a deleted segment's files stay on disk",
        ),
        broker: Some("log.segment.delete.delay.ms"),
        broker_default: true,
        support: Support::All,
        honoured: false,
        note: "accepted: a deleted segment is unlinked at once, and a fetch that holds it open still reads it, which is what Kafka's delay is for",
        mapping: Mapping::Kept,
    },
    TopicConfig {
        key: key(
            "flush.messages",
            ConfigType::Long,
            Valid::AtLeast(1),
            LONG_MAX,
            "records between forced syncs; 1 acknowledges only records on disk",
        ),
        broker: Some("log.flush.interval.messages"),
        broker_default: true,
        support: Support::All,
        honoured: true,
        note: "honoured; 1 = durable mode",
        mapping: Mapping::Field {
        apply: |c, v| {
            c.log.flush_messages = match v.number() {
                i64::MAX => u64::MAX,
                n => n.unsigned_abs(),
            }
        },
        render: |c| match c.log.flush_messages {
            u64::MAX => LONG_MAX.into(),
            n => n.to_string(),
        },
        },
    },
    TopicConfig {
        key: key(
            "flush.ms",
            ConfigType::Long,
            Valid::AtLeast(0),
            LONG_MAX,
            "milliseconds data may wait in the page cache before a forced sync",
        ),
        broker: Some("log.flush.interval.ms"),
        broker_default: false,
        support: Support::All,
        // Kafka's default, Long.MAX_VALUE, means never: the storage spells that -1.
        honoured: true,
        note: "honoured; 2^63-1 = never",
        mapping: Mapping::Field {
        apply: |c, v| {
            c.log.flush_ms = match v.number() {
                i64::MAX => -1,
                n => n,
            }
        },
        render: |c| match c.log.flush_ms {
            n if n < 0 => LONG_MAX.into(),
            n => n.to_string(),
        },
        },
    },
    TopicConfig {
        key: key(
            "follower.replication.throttled.replicas",
            ConfigType::List,
            Valid::ThrottledReplicas,
            "",
            "replicas whose log followers fetch throttled, as partition:broker items or *",
        ),
        broker: None,
        broker_default: false,
        support: Support::All,
        honoured: false,
        note: NO_FOLLOWERS,
        mapping: Mapping::Kept,
    },
    TopicConfig {
        key: key(
            "index.interval.bytes",
            ConfigType::Int,
            Valid::AtLeast(0),
            "4096",
            "log bytes between two offset index entries",
        ),
        broker: Some("log.index.interval.bytes"),
        broker_default: true,
        support: Support::All,
        honoured: true,
        note: "honoured",
        mapping: Mapping::Field {
        apply: |c, v| c.log.index_interval_bytes = v.number().unsigned_abs(),
        render: |c| c.log.index_interval_bytes.to_string(),
        },
    },
    TopicConfig {
        key: key(
            "leader.replication.throttled.replicas",
            ConfigType::List,
            Valid::ThrottledReplicas,
            "",
            "replicas whose log leaders serve followers throttled, as partition:broker items or *",
        ),
        broker: None,
        broker_default: false,
        support: Support::All,
        honoured: false,
        note: NO_FOLLOWERS,
        mapping: Mapping::Kept,
    },
    TopicConfig {
        key: key(
            "local.retention.bytes",
            ConfigType::Long,
            Valid::AtLeast(-2),
            "-2",
            "local size limit of a tiered partition; -2: retention.bytes",
        ),
        broker: Some("log.local.retention.bytes"),
        broker_default: true,
        support: Support::All,
        honoured: false,
        note: NO_REMOTE_TIER,
        mapping: Mapping::Kept,
    },
    TopicConfig {
        key: key(
            "local.retention.ms",
            ConfigType::Long,
            Valid::AtLeast(-2),
            "-2",
            "local age limit of a tiered partition; -2: retention.ms",
        ),
        broker: Some("log.local.retention.ms"),
        broker_default: true,
        support: Support::All,
        honoured: false,
        note: NO_REMOTE_TIER,
        mapping: Mapping::Kept,
    },
];
