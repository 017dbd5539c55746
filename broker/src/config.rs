//! The broker's validated configuration, read from Kafka's broker property names.
//!
//! Sources, later ones winning: built-in defaults (Kafka's, except where noted) → the
//! `--config` properties file → command-line flags. The broker property of a topic config
//! (`log.segment.bytes` for `segment.bytes`) is parsed by that topic config's row in
//! [`crate::topic_config`], so the broker default and the topic take the same values.
//! Unknown keys are reported at start; keys Kafka has but a single node does not need are
//! accepted and listed as ignored; an invalid value is an error that stops the start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::storage::CleanerConfig;
use crate::storage::LogConfig;
use crate::topic_config::{
    broker_config, by_broker_name, EffectiveConfig, TimestampBounds, TopicDefaults, Value,
};
// The type belongs to the topic config table; re-exported for existing callers.
pub use crate::topic_config::TimestampType;

mod properties;
mod values;

pub use properties::parse_properties;
pub use values::host_port;
use values::{
    boolean, broker_double, broker_number, buffer_size, congestion_control, invalid, listener,
    number, socket_addr,
};

/// A configuration problem, reported before the broker starts.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The properties file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A setting has a value that is not valid for it.
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        /// The property name.
        key: String,
        /// The value given.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
}

/// Broker settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `listeners`: where the Kafka port listens.
    pub listen: SocketAddr,
    /// `advertised.listeners`: host and port clients are told to connect to.
    pub advertised_host: String,
    /// Port part of the advertised listener.
    pub advertised_port: u16,
    /// `log.dirs`: where partitions live.
    pub data_dir: PathBuf,
    /// `node.id` (or `broker.id`).
    pub node_id: i32,
    /// Where the Prometheus-style metrics endpoint listens, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of an auto-created topic.
    pub num_partitions: i32,
    /// `message.max.bytes`: largest record batch a topic accepts unless it overrides it.
    pub message_max_bytes: i32,
    /// `log.message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// Topic defaults for the log (`log.segment.bytes`, `log.retention.*`, ...).
    pub log: LogConfig,
    /// `sluice.internal.log.segment.bytes`: for tests, the segment size of every topic's
    /// log in place of `log.segment.bytes` and `segment.bytes` (`None`: not set).
    pub internal_segment_bytes: Option<u64>,
    /// `sluice.log.open.segments.max`: segments of all partitions together that may hold
    /// their descriptor and maps open; idle ones close and reopen on use (`None`: half the
    /// open-file limit, within what `vm.max_map_count` allows).
    pub open_segments_max: Option<usize>,
    /// `log.cleanup.policy`: the `cleanup.policy` of topics that do not set one.
    pub cleanup_policy: String,
    /// `log.message.timestamp.before.max.ms` and `log.message.timestamp.after.max.ms`.
    pub timestamps: TimestampBounds,
    /// Broker properties of the topic configs Sluice only keeps and shows
    /// (`log.preallocate`), by topic config name.
    pub topic_kept: BTreeMap<&'static str, String>,
    /// `socket.request.max.bytes`: frames above this are refused before they are read.
    pub socket_request_max_bytes: usize,
    /// `max.connections`.
    pub max_connections: usize,
    /// `queued.max.requests`, per connection here: requests read ahead of their responses.
    pub queued_max_requests: usize,
    /// `queued.max.request.bytes`: bytes of requests read and not yet answered, all
    /// connections together (`None`: unbounded, Kafka's -1).
    pub queued_max_request_bytes: Option<u64>,
    /// `sluice.queued.max.request.bytes.per.connection`: the same, for one connection, so
    /// that one client cannot take the whole broker's budget.
    pub queued_max_request_bytes_per_connection: u64,
    /// `socket.send.buffer.bytes`: SO_SNDBUF of client connections; -1 leaves the
    /// kernel's autotuning on.
    pub socket_send_buffer_bytes: i32,
    /// `socket.receive.buffer.bytes`: SO_RCVBUF of client connections; -1 leaves the
    /// kernel's autotuning on.
    pub socket_receive_buffer_bytes: i32,
    /// `sluice.loopback.congestion.control`: the TCP congestion control of connections
    /// from this host (empty: the system's); see [`crate::server::bind`].
    pub loopback_congestion_control: String,
    /// `connections.max.idle.ms`.
    pub connections_max_idle_ms: u64,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `log.flush.scheduler.interval.ms`: how often the flusher checks `flush.ms` and
    /// syncs the segments sealed since its last run.
    pub flush_scheduler_interval_ms: u64,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: u64,
    /// `offsets.retention.minutes`, in milliseconds.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are looked for.
    pub offsets_retention_check_interval_ms: i64,
    /// `log.cleaner.*`: the log cleaner of compacted topics.
    pub cleaner: CleanerConfig,
    /// `transaction.max.timeout.ms`.
    pub transaction_max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub transaction_abort_timed_out_interval_ms: i64,
    /// `transactional.id.expiration.ms`.
    pub transactional_id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub transaction_remove_expired_interval_ms: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            data_dir: PathBuf::from("./data"),
            node_id: 0,
            metrics: None,
            auto_create_topics: true,
            num_partitions: 1,
            message_max_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            log: LogConfig::default(),
            internal_segment_bytes: None,
            open_segments_max: None,
            cleanup_policy: "delete".into(),
            timestamps: TimestampBounds::default(),
            topic_kept: BTreeMap::new(),
            socket_request_max_bytes: 104_857_600,
            max_connections: 10_000,
            queued_max_requests: 500,
            // Kafka's default is unbounded; requests held while they wait (a long poll)
            // pin their frames, up to 100 MiB each, so Sluice bounds them.
            queued_max_request_bytes: Some(1 << 30),
            queued_max_request_bytes_per_connection: 64 << 20,
            // Kafka's default is 100 KiB for both; the kernel's autotuning does better on
            // a modern Linux, so Sluice leaves it on unless told otherwise.
            socket_send_buffer_bytes: -1,
            socket_receive_buffer_bytes: -1,
            loopback_congestion_control: DEFAULT_LOOPBACK_CONGESTION_CONTROL.into(),
            connections_max_idle_ms: 600_000,
            retention_check_interval_ms: 300_000,
            flush_scheduler_interval_ms: 1000,
            group_initial_rebalance_delay_ms: 3000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            cleaner: CleanerConfig::default(),
            transaction_max_timeout_ms: 900_000,
            transaction_abort_timed_out_interval_ms: 10_000,
            transactional_id_expiration_ms: 7 * 24 * 60 * 60 * 1000,
            transaction_remove_expired_interval_ms: 3_600_000,
        }
    }
}

/// Reno is built into every Linux kernel and any process may select it, and it does not
/// pace: on a loopback path there is no link to share, and the pacing timers of BBR (a
/// common system default) cost the sender several times the CPU of the transfer itself.
pub const DEFAULT_LOOPBACK_CONGESTION_CONTROL: &str = "reno";

/// Kafka broker settings that mean nothing for a single node without TLS or ZooKeeper;
/// accepted so that an operator's existing file works.
const IGNORED: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
    "offsets.topic.replication.factor",
    "offsets.topic.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "default.replication.factor",
    "min.insync.replicas",
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "inter.broker.listener.name",
    "listener.security.protocol.map",
    "delete.topic.enable",
    "compression.type",
];

impl Config {
    /// Applies Kafka broker properties on top of `self`, returning the keys that were
    /// not recognised (the caller logs them).
    ///
    /// # Errors
    /// The first invalid value.
    pub fn apply_properties(
        &mut self,
        props: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, ConfigError> {
        let mut unknown = Vec::new();
        let mut listeners_set = false;
        for (key, value) in props {
            let k = key.as_str();
            let v = value.as_str();
            match k {
                "listeners" => {
                    let (host, port) = listener(k, v)?;
                    self.listen = socket_addr(k, &host, port)?;
                    listeners_set = true;
                }
                "advertised.listeners" => {}
                "log.dirs" | "log.dir" => {
                    let first = v.split(',').next().unwrap_or("").trim();
                    if first.is_empty() {
                        return Err(invalid(k, v, "expected a directory"));
                    }
                    self.data_dir = PathBuf::from(first);
                }
                "node.id" | "broker.id" => self.node_id = number(k, v, 0)?,
                "auto.create.topics.enable" => self.auto_create_topics = boolean(k, v)?,
                "num.partitions" => self.num_partitions = number(k, v, 1)?,
                // Kafka's rule for the default of a topic config is the topic config's.
                _ if by_broker_name(k).is_some() && !IGNORED.contains(&k) => {
                    self.apply_topic_default(k, v)?
                }
                "log.roll.hours" if !props.contains_key("log.roll.ms") => {
                    self.log.segment_ms = broker_number(k, v)?.saturating_mul(3_600_000)
                }
                "log.roll.hours" => {}
                "sluice.internal.log.segment.bytes" => {
                    self.internal_segment_bytes = Some(broker_number(k, v)?.unsigned_abs())
                }
                "log.retention.minutes" if !props.contains_key("log.retention.ms") => {
                    self.log.retention_ms = minutes(broker_number(k, v)?, 60_000)
                }
                "log.retention.hours"
                    if !props.contains_key("log.retention.ms")
                        && !props.contains_key("log.retention.minutes") =>
                {
                    self.log.retention_ms = minutes(broker_number(k, v)?, 3_600_000)
                }
                "log.retention.minutes" | "log.retention.hours" => {}
                "log.flush.scheduler.interval.ms" => {
                    self.flush_scheduler_interval_ms = number(k, v, 1)?
                }
                "log.retention.check.interval.ms" => {
                    self.retention_check_interval_ms = number(k, v, 1)?
                }
                "socket.request.max.bytes" => self.socket_request_max_bytes = number(k, v, 1024)?,
                "max.connections" => self.max_connections = number(k, v, 1)?,
                "queued.max.requests" => self.queued_max_requests = number(k, v, 1)?,
                // As Kafka's socket server reads it: zero or less is no limit.
                "queued.max.request.bytes" => {
                    self.queued_max_request_bytes =
                        u64::try_from(broker_number(k, v)?).ok().filter(|&n| n > 0)
                }
                "sluice.queued.max.request.bytes.per.connection" => {
                    self.queued_max_request_bytes_per_connection = number(k, v, 1)?
                }
                "socket.send.buffer.bytes" => self.socket_send_buffer_bytes = buffer_size(k, v)?,
                "socket.receive.buffer.bytes" => {
                    self.socket_receive_buffer_bytes = buffer_size(k, v)?
                }
                "sluice.loopback.congestion.control" => {
                    self.loopback_congestion_control = congestion_control(k, v)?
                }
                "connections.max.idle.ms" => self.connections_max_idle_ms = number(k, v, 1)?,
                "sluice.console.listener" => {
                    let (host, port) = listener(k, v)?;
                    self.metrics = Some(socket_addr(k, &host, port)?);
                }
                "group.initial.rebalance.delay.ms" => {
                    self.group_initial_rebalance_delay_ms = number(k, v, 0)?
                }
                "offsets.retention.minutes" => {
                    self.offsets_retention_ms = number::<i64>(k, v, 1)? * 60_000
                }
                "offsets.retention.check.interval.ms" => {
                    self.offsets_retention_check_interval_ms = number(k, v, 1)?
                }
                "transaction.max.timeout.ms" => {
                    self.transaction_max_timeout_ms = broker_number(k, v)? as i32
                }
                "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                    self.transaction_abort_timed_out_interval_ms = broker_number(k, v)?
                }
                "transactional.id.expiration.ms" => {
                    self.transactional_id_expiration_ms = broker_number(k, v)?
                }
                "transaction.remove.expired.transaction.cleanup.interval.ms" => {
                    self.transaction_remove_expired_interval_ms = broker_number(k, v)?
                }
                "producer.id.expiration.ms" => {
                    self.log.producer_id_expiration_ms = broker_number(k, v)?
                }
                "log.cleaner.enable" => self.cleaner.enable = boolean(k, v)?,
                "log.cleaner.threads" => {
                    self.cleaner.threads = broker_number(k, v)?.unsigned_abs() as usize
                }
                "log.cleaner.dedupe.buffer.size" => {
                    self.cleaner.dedupe_buffer_size = broker_number(k, v)?.max(0).unsigned_abs()
                }
                "log.cleaner.io.buffer.size" => {
                    self.cleaner.io_buffer_size = broker_number(k, v)?.unsigned_abs() as usize
                }
                "log.cleaner.io.buffer.load.factor" => {
                    self.cleaner.io_buffer_load_factor = match broker_double(k, v)? {
                        f if f > 0.0 && f <= 1.0 => f,
                        _ => return Err(invalid(k, v, "must be above 0 and at most 1")),
                    }
                }
                "log.cleaner.io.max.bytes.per.second" => {
                    self.cleaner.io_max_bytes_per_second = match broker_double(k, v)? {
                        f if f > 0.0 => f,
                        _ => return Err(invalid(k, v, "must be above 0")),
                    }
                }
                "log.cleaner.backoff.ms" => {
                    self.cleaner.backoff_ms = broker_number(k, v)?.unsigned_abs()
                }
                "sluice.log.open.segments.max" => self.open_segments_max = Some(number(k, v, 1)?),
                "sluice.producer.state.max.producers.per.partition" => {
                    self.log.max_producers_per_partition = number(k, v, 1)?
                }
                k if IGNORED.contains(&k)
                    || k.starts_with("zookeeper.")
                    || k.starts_with("ssl.") =>
                {
                    // Still held to Kafka's rule: a value Kafka would refuse is a typo.
                    if let Some(row) = by_broker_name(k) {
                        row.key.parse(v).map_err(|why| invalid(k, v, &why.to_string()))?;
                    }
                    tracing::info!(key = k, "setting has no effect on a single node; ignored");
                }
                _ => unknown.push(key.clone()),
            }
        }
        let c = &self.cleaner;
        if c.enable && c.threads > 0 && c.dedupe_buffer_size / (c.threads as u64) < 1 << 20 {
            // Kafka's own check when it (re)configures the cleaner.
            return Err(invalid(
                "log.cleaner.dedupe.buffer.size",
                &c.dedupe_buffer_size.to_string(),
                "must be at least 1 MiB per cleaner thread (log.cleaner.threads)",
            ));
        }
        match props.get("advertised.listeners") {
            Some(v) => {
                let (host, port) = listener("advertised.listeners", v)?;
                self.advertised_host = host;
                self.advertised_port = port;
            }
            None if listeners_set => self.advertise_listen_address(),
            None => {}
        }
        Ok(unknown)
    }

    /// Sets the broker default of a topic config from its broker property, through the
    /// topic config's row (so the broker and the topic take the same values).
    fn apply_topic_default(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let Some(row) = by_broker_name(key) else { return Ok(()) };
        let parsed = row.parse(value).map_err(|why| invalid(key, value, &why.to_string()))?;
        let mut topic = EffectiveConfig {
            log: self.log.clone(),
            max_message_bytes: self.message_max_bytes,
            timestamp_type: self.timestamp_type,
            cleanup_policy: std::mem::take(&mut self.cleanup_policy),
            timestamps: self.timestamps,
            kept: std::mem::take(&mut self.topic_kept),
        };
        row.apply(&mut topic, &parsed);
        self.log = topic.log;
        self.message_max_bytes = topic.max_message_bytes;
        self.timestamp_type = topic.timestamp_type;
        self.cleanup_policy = topic.cleanup_policy;
        self.timestamps = topic.timestamps;
        self.topic_kept = topic.kept;
        Ok(())
    }

    /// Advertises the listen address (unless it is the wildcard, which clients cannot
    /// connect to: then the host stays as it was).
    pub fn advertise_listen_address(&mut self) {
        if !self.listen.ip().is_unspecified() {
            self.advertised_host = self.listen.ip().to_string();
        }
        self.advertised_port = self.listen.port();
    }

    /// Reads a properties file and applies it.
    ///
    /// # Errors
    /// Unreadable file or invalid value.
    pub fn apply_file(&mut self, path: &Path) -> Result<Vec<String>, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        self.apply_properties(&parse_properties(&text))
    }
}

fn minutes(n: i64, unit: i64) -> i64 {
    if n < 0 {
        -1
    } else {
        n.saturating_mul(unit)
    }
}

// Here, not beside `TopicDefaults`: the topic config table is a leaf that knows no broker
// config.
impl TopicDefaults {
    /// The defaults a broker config implies.
    pub fn from_config(c: &Config) -> Self {
        TopicDefaults {
            log: c.log.clone(),
            max_message_bytes: c.message_max_bytes,
            timestamp_type: c.timestamp_type,
            internal_segment_bytes: c.internal_segment_bytes,
            open_segments_max: c
                .open_segments_max
                .unwrap_or_else(crate::storage::sys::default_open_segments),
            cleanup_policy: c.cleanup_policy.clone(),
            timestamps: c.timestamps,
            kept: c.topic_kept.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
