//! The rows of the config table: Kafka 4.x's name, type, rule, default and documentation
//! line of every topic config Kafka documents (LogConfig's definitions, the throttled
//! replica lists of QuotaConfig and the topic-level tiered storage configs), its broker
//! synonym, what Sluice supports of it and does with it, and how it maps onto
//! [`EffectiveConfig`]; then the broker-only properties.
//!
//! Not here: `message.format.version`, `message.downconversion.enable` and
//! `message.timestamp.difference.max.ms`, which Kafka 4.0 removed (a Kafka 4 broker refuses
//! them as unknown, and so does Sluice), and the internal `internal.segment.bytes`.

use super::{
    render_double, timestamp_type_name, ConfigKey, ConfigType, Mapping, Support, TimestampType,
    TopicConfig, Valid,
};

const BYTES_2_30: &str = "1073741824";
const SEVEN_DAYS_MS: &str = "604800000";
const LONG_MAX: &str = "9223372036854775807";

/// Kafka 4.0's minimum `segment.bytes` (KIP-1030): 3.9's 14 let one client make every
/// batch roll a segment, and each segment holds descriptors and mappings.
const SEGMENT_BYTES_MIN: i64 = 1 << 20;

/// Kafka's `cleanup.policy` values.
pub const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
/// Kafka's `compression.type` values (`BrokerCompressionType`).
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
/// Kafka's `message.timestamp.type` values.
pub const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

const NOT_RECOMPRESSED: &str =
    "accepted: only compression.type=producer, so the broker never recompresses";
const NO_FOLLOWERS: &str = "accepted: a single node has no followers to throttle";
const NO_REMOTE_TIER: &str = "accepted: no remote tier (remote.storage.enable is false)";

const fn key(
    name: &'static str,
    config_type: ConfigType,
    valid: Valid,
    default: &'static str,
    doc: &'static str,
) -> ConfigKey {
    ConfigKey { name, config_type, valid, default, doc }
}

/// Every topic config of Kafka 4.x, in DescribeConfigs order (by name).
pub static TOPIC_CONFIGS: &[TopicConfig] = &[
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

/// Broker properties that are not the synonym of a topic config, with Kafka's rules.
/// `config.rs` parses each through its row.
pub static BROKER_CONFIGS: &[ConfigKey] = &[
    key("log.roll.hours", ConfigType::Int, Valid::AtLeast(1), "168", "segment.ms in hours"),
    key("log.retention.minutes", ConfigType::Int, Valid::Any, "", "retention.ms in minutes"),
    key("log.retention.hours", ConfigType::Int, Valid::Any, "168", "retention.ms in hours"),
    // Kafka's type is INT.
    key(
        "producer.id.expiration.ms",
        ConfigType::Int,
        Valid::AtLeast(1),
        "86400000",
        "how long a producer id's state is kept after its last write",
    ),
    // Kafka's default, -1, is unbounded; Sluice's is 1 GiB (see `Config`).
    key(
        "queued.max.request.bytes",
        ConfigType::Long,
        Valid::Any,
        "1073741824",
        "bytes of requests read and not yet answered, all connections together; 0 or less: no limit",
    ),
    key("log.cleaner.enable", ConfigType::Boolean, Valid::Any, "true", "run the log cleaner"),
    key(
        "log.cleaner.threads",
        ConfigType::Int,
        Valid::AtLeast(0),
        "1",
        "threads that clean compacted logs",
    ),
    // Kafka checks at least 1 MiB per cleaner thread when it starts the cleaner.
    key(
        "log.cleaner.dedupe.buffer.size",
        ConfigType::Long,
        Valid::Any,
        "134217728",
        "memory for the key-hash offset maps of all cleaner threads",
    ),
    key(
        "log.cleaner.io.buffer.size",
        ConfigType::Int,
        Valid::AtLeast(0),
        "524288",
        "write buffer of all cleaner threads",
    ),
    key(
        "log.cleaner.io.buffer.load.factor",
        ConfigType::Double,
        Valid::Any,
        "0.9",
        "how full the offset map may get",
    ),
    key(
        "log.cleaner.io.max.bytes.per.second",
        ConfigType::Double,
        Valid::Any,
        "1.7976931348623157E308",
        "bytes the cleaner threads read and write per second, together",
    ),
    key(
        "log.cleaner.backoff.ms",
        ConfigType::Long,
        Valid::AtLeast(0),
        "15000",
        "sleep of a cleaner thread that found nothing to clean",
    ),
    key(
        "transaction.max.timeout.ms",
        ConfigType::Int,
        Valid::AtLeast(1),
        "900000",
        "largest transaction.timeout.ms a producer may ask for",
    ),
    key(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        ConfigType::Int,
        Valid::AtLeast(1),
        "10000",
        "how often ongoing transactions past their timeout are looked for and aborted",
    ),
    key(
        "transactional.id.expiration.ms",
        ConfigType::Int,
        Valid::AtLeast(1),
        "604800000",
        "how long a transactional id without a transaction is kept after its last update",
    ),
    key(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        ConfigType::Int,
        Valid::AtLeast(1),
        "3600000",
        "how often transactional ids past transactional.id.expiration.ms are removed",
    ),
    // As Kafka 4.0's test-only `internal.segment.bytes`, but an operator property only: a
    // client cannot set it on a topic, so the 1 MiB floor above holds against clients.
    key(
        "sluice.internal.log.segment.bytes",
        ConfigType::Int,
        Valid::AtLeast(14),
        "",
        "for tests: the size at which every topic's segments roll, in place of segment.bytes",
    ),
];
