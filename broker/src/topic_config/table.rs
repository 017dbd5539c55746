//! The rows of the config table: Kafka 4.x's name, type, rule, default and documentation
//! line of every topic config Kafka documents (LogConfig's definitions, the throttled
//! replica lists of QuotaConfig and the topic-level tiered storage configs), its broker
//! synonym, what Sluice supports of it and does with it, and how it maps onto
//! [`EffectiveConfig`]; then the broker-only properties.
//!
//! Not here: `message.format.version`, `message.downconversion.enable` and
//! `message.timestamp.difference.max.ms`, which Kafka 4.0 removed (a Kafka 4 broker refuses
//! them as unknown, and so does Sluice), and the internal `internal.segment.bytes`.

use super::{render_double, timestamp_type_name, ConfigKey, ConfigType, TopicConfig, Valid};

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

mod a_to_l;
mod m_to_z;

/// Every topic config of Kafka 4.x, in DescribeConfigs order (by name); the rows are in two
/// files, split at `m`, each in order.
pub static TOPIC_CONFIGS: &[TopicConfig] = &ALL_ROWS;

const ALL_ROWS: [TopicConfig; a_to_l::ROWS.len() + m_to_z::ROWS.len()] =
    concat(a_to_l::ROWS, m_to_z::ROWS);

/// `a` then `b`, as one array (at compile time).
const fn concat<const N: usize>(a: &[TopicConfig], b: &[TopicConfig]) -> [TopicConfig; N] {
    assert!(a.len() + b.len() == N && !a.is_empty());
    let mut out = [a[0]; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < a.len() { a[i] } else { b[i - a.len()] };
        i += 1;
    }
    out
}

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
