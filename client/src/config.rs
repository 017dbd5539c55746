//! Configuration by the Java client's property names, in two stages: a [`ClientConfig`]
//! holds raw `key=value` strings (from pairs or a properties file); `ProducerConfig::new`,
//! `ConsumerConfig::new` and `AdminConfig::new` validate them into typed structs.
//!
//! Every property the client knows is one row of [`PROPERTIES`]: its name, type, bounds,
//! default, which clients read it and its documentation. Validation, defaults and the
//! typed structs all read that table, so a value cannot be accepted by one client and
//! refused by another. As the Java client does, a property of another client is ignored
//! (a properties file may be shared); a name no client knows is refused, since it is most
//! often a typo that would otherwise be silently dropped.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::error::{ClientError, Result};

/// A property's value type and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A 32-bit integer within the bounds.
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A 64-bit integer within the bounds.
    Long {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// `true` or `false`, any case.
    Bool,
    /// One of the listed strings, any case.
    Choice(&'static [&'static str]),
    /// Any string.
    Str,
}

/// Which clients read a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Read by the producer.
    pub producer: bool,
    /// Read by the consumer.
    pub consumer: bool,
    /// Read by the admin client.
    pub admin: bool,
}

const ALL: Roles = Roles { producer: true, consumer: true, admin: true };
const PRODUCER: Roles = Roles { producer: true, consumer: false, admin: false };
const CONSUMER: Roles = Roles { producer: false, consumer: true, admin: false };
const ADMIN: Roles = Roles { producer: false, consumer: false, admin: true };

/// One known property.
#[derive(Debug, Clone, Copy)]
pub struct Property {
    /// The Java client's name.
    pub name: &'static str,
    /// Its type and bounds.
    pub kind: Kind,
    /// Its default, as text; `None` when unset by default.
    pub default: Option<&'static str>,
    /// Which clients read it.
    pub roles: Roles,
    /// One line of documentation.
    pub doc: &'static str,
}

const I32: (i64, i64) = (i32::MIN as i64, i32::MAX as i64);
const fn int(min: i64) -> Kind {
    Kind::Int { min, max: I32.1 }
}
const fn long(min: i64) -> Kind {
    Kind::Long { min, max: i64::MAX }
}

/// Every property this client knows, with the Java client's defaults.
pub const PROPERTIES: &[Property] = &[
    p(
        "bootstrap.servers",
        Kind::Str,
        None,
        ALL,
        "comma-separated host:port list to fetch metadata from",
    ),
    p(
        "client.id",
        Kind::Str,
        Some("sluice-client"),
        ALL,
        "sent in every request header, for the broker's logs and quotas",
    ),
    p(
        "request.timeout.ms",
        int(0),
        Some("30000"),
        ALL,
        "how long to wait for a response before failing or retrying the request",
    ),
    p("metadata.max.age.ms", long(0), Some("300000"), ALL, "refresh metadata at least this often"),
    p("reconnect.backoff.ms", long(0), Some("50"), ALL, "wait before reconnecting to a broker"),
    p(
        "reconnect.backoff.max.ms",
        long(0),
        Some("1000"),
        ALL,
        "upper bound of the reconnect backoff",
    ),
    p(
        "retry.backoff.ms",
        long(0),
        Some("100"),
        ALL,
        "first wait before retrying a failed request (KIP-580 doubles it per attempt)",
    ),
    p("retry.backoff.max.ms", long(0), Some("1000"), ALL, "upper bound of the retry backoff"),
    p(
        "socket.connection.setup.timeout.ms",
        long(0),
        Some("10000"),
        ALL,
        "how long a TCP connect and ApiVersions exchange may take",
    ),
    p(
        "receive.message.max.bytes",
        int(1000),
        Some("104857600"),
        ALL,
        "largest response frame accepted from a broker",
    ),
    p(
        "default.api.timeout.ms",
        int(0),
        Some("60000"),
        ADMIN,
        "how long an admin call may keep retrying before it fails",
    ),
    p(
        "acks",
        Kind::Choice(&["all", "-1", "0", "1"]),
        Some("all"),
        PRODUCER,
        "acknowledgements the leader waits for: 0, 1 or all",
    ),
    p(
        "batch.size",
        int(0),
        Some("16384"),
        PRODUCER,
        "a partition's batch is sent once it holds this many bytes",
    ),
    p(
        "linger.ms",
        long(0),
        Some("5"),
        PRODUCER,
        "how long a batch waits for more records before it is sent",
    ),
    p(
        "compression.type",
        Kind::Choice(&["none", "gzip", "snappy", "lz4", "zstd"]),
        Some("none"),
        PRODUCER,
        "codec for record batches",
    ),
    p(
        "compression.gzip.level",
        Kind::Int { min: -1, max: 9 },
        Some("-1"),
        PRODUCER,
        "gzip level 1 to 9; -1 is zlib's default (6)",
    ),
    p(
        "compression.lz4.level",
        Kind::Int { min: 1, max: 17 },
        Some("9"),
        PRODUCER,
        "accepted for compatibility; this client's lz4 has one (fast) level",
    ),
    p(
        "compression.zstd.level",
        Kind::Int { min: -131072, max: 22 },
        Some("3"),
        PRODUCER,
        "zstd level, negative ones included (KIP-390)",
    ),
    p(
        "max.request.size",
        int(0),
        Some("1048576"),
        PRODUCER,
        "largest produce request, and so the largest record",
    ),
    p(
        "buffer.memory",
        long(0),
        Some("33554432"),
        PRODUCER,
        "bytes of records waiting to be sent; send waits when it is full",
    ),
    p(
        "max.block.ms",
        long(0),
        Some("60000"),
        PRODUCER,
        "how long send waits for buffer.memory or metadata",
    ),
    p(
        "enable.idempotence",
        Kind::Bool,
        Some("true"),
        PRODUCER,
        "each record written once and in order, across retries",
    ),
    p(
        "max.in.flight.requests.per.connection",
        int(1),
        Some("5"),
        PRODUCER,
        "unanswered produce requests per broker (at most 5 with idempotence)",
    ),
    p(
        "retries",
        int(0),
        Some("2147483647"),
        PRODUCER,
        "how often a failed batch is sent again (delivery.timeout.ms bounds it too)",
    ),
    p(
        "delivery.timeout.ms",
        int(0),
        Some("120000"),
        PRODUCER,
        "time from send to acknowledgement or failure",
    ),
    p(
        "transactional.id",
        Kind::Str,
        None,
        PRODUCER,
        "makes the producer transactional (implies enable.idempotence)",
    ),
    p(
        "transaction.timeout.ms",
        int(1),
        Some("60000"),
        PRODUCER,
        "how long the coordinator lets a transaction stay open before aborting it",
    ),
    p(
        "partitioner.ignore.keys",
        Kind::Bool,
        Some("false"),
        PRODUCER,
        "place keyed records as if they had no key",
    ),
    p("group.id", Kind::Str, None, CONSUMER, "the consumer group to join and commit offsets in"),
    p("group.instance.id", Kind::Str, None, CONSUMER, "static membership id (KIP-345)"),
    p(
        "auto.offset.reset",
        Kind::Choice(&["earliest", "latest", "none"]),
        Some("latest"),
        CONSUMER,
        "where to start without a committed offset",
    ),
    p(
        "enable.auto.commit",
        Kind::Bool,
        Some("true"),
        CONSUMER,
        "commit the position in the background",
    ),
    p(
        "auto.commit.interval.ms",
        int(0),
        Some("5000"),
        CONSUMER,
        "how often the position is committed automatically",
    ),
    p(
        "fetch.min.bytes",
        int(0),
        Some("1"),
        CONSUMER,
        "the broker waits for this many bytes before answering a fetch",
    ),
    p(
        "fetch.max.wait.ms",
        int(0),
        Some("500"),
        CONSUMER,
        "the longest the broker waits for fetch.min.bytes",
    ),
    p("fetch.max.bytes", int(0), Some("52428800"), CONSUMER, "largest fetch response asked for"),
    p(
        "max.partition.fetch.bytes",
        int(0),
        Some("1048576"),
        CONSUMER,
        "largest part of a fetch response for one partition",
    ),
    p("max.poll.records", int(1), Some("500"), CONSUMER, "most records one poll returns"),
    p(
        "isolation.level",
        Kind::Choice(&["read_uncommitted", "read_committed"]),
        Some("read_uncommitted"),
        CONSUMER,
        "whether records of open transactions are returned",
    ),
    p("check.crcs", Kind::Bool, Some("true"), CONSUMER, "verify each fetched batch's CRC-32C"),
    p(
        "session.timeout.ms",
        int(1),
        Some("45000"),
        CONSUMER,
        "a member without heartbeats for this long leaves the group",
    ),
    p("heartbeat.interval.ms", int(1), Some("3000"), CONSUMER, "how often the member heartbeats"),
    p(
        "max.poll.interval.ms",
        int(1),
        Some("300000"),
        CONSUMER,
        "a member that does not poll for this long leaves the group",
    ),
    p(
        "partition.assignment.strategy",
        Kind::Str,
        Some("range,cooperative-sticky"),
        CONSUMER,
        "assignors in order of preference",
    ),
    p(
        "allow.auto.create.topics",
        Kind::Bool,
        Some("true"),
        CONSUMER,
        "let metadata requests create subscribed topics",
    ),
];

const fn p(
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    roles: Roles,
    doc: &'static str,
) -> Property {
    Property { name, kind, default, roles, doc }
}

/// The row of `name`.
pub fn property(name: &str) -> Option<&'static Property> {
    PROPERTIES.iter().find(|p| p.name == name)
}

/// Raw `key=value` properties, as the Java client takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    values: BTreeMap<String, String>,
}

impl ClientConfig {
    /// No properties set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value` (checked when a client is built).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.values.insert(name.into(), value.into());
        self
    }

    /// As [`Self::set`], by value, for chaining.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    /// The properties of a Java-style properties file: `key=value` or `key: value` lines,
    /// `#` and `!` comments.
    ///
    /// # Errors
    /// [`ClientError::Config`] if the file cannot be read or a line has no separator.
    pub fn from_properties_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ClientError::Config {
            name: "properties file".into(),
            value: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_properties(&text)
    }

    /// As [`Self::from_properties_file`], from the file's text.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a line without `=` or `:`.
    pub fn from_properties(text: &str) -> Result<Self> {
        let mut config = ClientConfig::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some(at) = line.find(['=', ':']) else {
                return Err(ClientError::Config {
                    name: line.into(),
                    value: String::new(),
                    reason: "a properties line is key=value".into(),
                });
            };
            config.set(line[..at].trim(), line[at + 1..].trim());
        }
        Ok(config)
    }

    /// The raw value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every property set, by name (to lay one config over another).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Checks every set property against the table and returns a reader for `role`.
    fn validate(&self, role: fn(&Roles) -> bool) -> Result<Reader<'_>> {
        for (name, value) in &self.values {
            let Some(prop) = property(name) else {
                return Err(invalid(name, value, "unknown property"));
            };
            if role(&prop.roles) {
                check(prop, value)?;
            }
        }
        Ok(Reader { config: self })
    }
}

fn invalid(name: &str, value: &str, reason: impl Into<String>) -> ClientError {
    ClientError::Config { name: name.into(), value: value.into(), reason: reason.into() }
}

fn check(prop: &Property, value: &str) -> Result<()> {
    let v = value.trim();
    match prop.kind {
        Kind::Int { min, max } | Kind::Long { min, max } => {
            let n: i64 = v.parse().map_err(|_| invalid(prop.name, value, "not an integer"))?;
            let (min, max) = match prop.kind {
                Kind::Int { .. } => (min.max(I32.0), max.min(I32.1)),
                _ => (min, max),
            };
            if n < min || n > max {
                return Err(invalid(prop.name, value, format!("must be in {min}..={max}")));
            }
        }
        Kind::Bool => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return Err(invalid(prop.name, value, "must be true or false"));
            }
        }
        Kind::Choice(choices) => {
            if !choices.iter().any(|c| c.eq_ignore_ascii_case(v)) {
                return Err(invalid(
                    prop.name,
                    value,
                    format!("must be one of {}", choices.join(", ")),
                ));
            }
        }
        Kind::Str => {}
    }
    Ok(())
}

/// Typed access to validated properties, falling back to the table's defaults.
struct Reader<'a> {
    config: &'a ClientConfig,
}

impl Reader<'_> {
    fn raw(&self, name: &str) -> Option<&str> {
        let prop = property(name).expect("invariant: the typed configs read known properties");
        self.config.get(name).map(str::trim).or(prop.default)
    }

    fn int(&self, name: &str) -> i64 {
        self.raw(name).and_then(|v| v.parse().ok()).expect("invariant: numeric rows have defaults")
    }

    fn ms(&self, name: &str) -> Duration {
        Duration::from_millis(self.int(name).max(0) as u64)
    }

    fn bool(&self, name: &str) -> bool {
        self.raw(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    fn string(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|v| !v.is_empty()).map(str::to_string)
    }

    fn common(&self) -> Result<CommonConfig> {
        let servers = self.string("bootstrap.servers").unwrap_or_default();
        let bootstrap: Vec<String> =
            servers.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        if bootstrap.is_empty() {
            return Err(invalid("bootstrap.servers", &servers, "at least one host:port is needed"));
        }
        for server in &bootstrap {
            let ok = server
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(invalid("bootstrap.servers", server, "each entry is host:port"));
            }
        }
        Ok(CommonConfig {
            bootstrap,
            client_id: self.string("client.id").unwrap_or_default(),
            request_timeout: self.ms("request.timeout.ms"),
            metadata_max_age: self.ms("metadata.max.age.ms"),
            reconnect_backoff: self.ms("reconnect.backoff.ms"),
            reconnect_backoff_max: self.ms("reconnect.backoff.max.ms"),
            retry_backoff: self.ms("retry.backoff.ms"),
            retry_backoff_max: self.ms("retry.backoff.max.ms"),
            connection_setup_timeout: self.ms("socket.connection.setup.timeout.ms"),
            receive_max_bytes: self.int("receive.message.max.bytes") as usize,
        })
    }
}

/// What every client reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonConfig {
    /// `bootstrap.servers`, split.
    pub bootstrap: Vec<String>,
    /// `client.id`.
    pub client_id: String,
    /// `request.timeout.ms`.
    pub request_timeout: Duration,
    /// `metadata.max.age.ms`.
    pub metadata_max_age: Duration,
    /// `reconnect.backoff.ms`.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`.
    pub reconnect_backoff_max: Duration,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`.
    pub retry_backoff_max: Duration,
    /// `socket.connection.setup.timeout.ms`.
    pub connection_setup_timeout: Duration,
    /// `receive.message.max.bytes`.
    pub receive_max_bytes: usize,
}

impl CommonConfig {
    /// The wait before attempt `attempt` (1 for the first retry): `retry.backoff.ms`
    /// doubled per attempt up to `retry.backoff.max.ms`, with ±20% jitter (KIP-580).
    pub fn retry_backoff(&self, attempt: u32, jitter: f64) -> Duration {
        exponential(self.retry_backoff, self.retry_backoff_max, attempt, jitter)
    }
}

/// `base * 2^(attempt-1)` capped at `max`, scaled by `1 + 0.2 * jitter` (`jitter` in -1..=1).
pub fn exponential(base: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let doubled = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = doubled.min(max.max(base));
    capped.mul_f64((1.0 + 0.2 * jitter.clamp(-1.0, 1.0)).max(0.0))
}

/// `acks`: how many replicas acknowledge a write before the broker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: no answer at all; the offset is unknown.
    None,
    /// `acks=1`: the leader wrote it.
    Leader,
    /// `acks=all` (or -1): every in-sync replica wrote it.
    All,
}

impl Acks {
    /// The wire value of ProduceRequest `acks`.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// The producer's validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerConfig {
    /// What every client reads.
    pub common: CommonConfig,
    /// `acks`.
    pub acks: Acks,
    /// `batch.size`.
    pub batch_size: usize,
    /// `linger.ms`.
    pub linger: Duration,
    /// `compression.type`.
    pub compression: sluice_protocol::record::compression::Compression,
    /// `compression.<codec>.level` of the chosen codec; `None` for its default.
    pub compression_level: Option<i32>,
    /// `max.request.size`.
    pub max_request_size: usize,
    /// `buffer.memory`.
    pub buffer_memory: usize,
    /// `max.block.ms`.
    pub max_block: Duration,
    /// `enable.idempotence`.
    pub idempotence: bool,
    /// `max.in.flight.requests.per.connection`.
    pub max_in_flight: usize,
    /// `retries`.
    pub retries: u32,
    /// `delivery.timeout.ms`.
    pub delivery_timeout: Duration,
    /// `partitioner.ignore.keys`.
    pub partitioner_ignore_keys: bool,
    /// `transactional.id`: `Some` makes the producer transactional.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`.
    pub transaction_timeout: Duration,
}

impl ProducerConfig {
    /// Validates `config` for a producer, with the Java client's cross-property rules.
    ///
    /// # Errors
    /// [`ClientError::Config`] naming the first property that is wrong.
    pub fn new(config: &ClientConfig) -> Result<Self> {
        let r = config.validate(|roles| roles.producer)?;
        let acks = match r.raw("acks").unwrap_or("all") {
            "0" => Acks::None,
            "1" => Acks::Leader,
            _ => Acks::All,
        };
        let compression =
            r.raw("compression.type").unwrap_or("none").to_ascii_lowercase().parse().map_err(
                |_| {
                    invalid(
                        "compression.type",
                        r.raw("compression.type").unwrap_or(""),
                        "unknown codec",
                    )
                },
            )?;
        let explicit_idempotence = config.get("enable.idempotence").is_some();
        let mut idempotence = r.bool("enable.idempotence");
        let max_in_flight = r.int("max.in.flight.requests.per.connection") as usize;
        // As the Java client: idempotence needs acks=all and at most 5 requests in flight;
        // asked for explicitly, a conflict is an error, by default it turns idempotence off.
        let conflict = if acks != Acks::All {
            Some(("acks", r.raw("acks").unwrap_or("").to_string()))
        } else if max_in_flight > 5 {
            Some(("max.in.flight.requests.per.connection", max_in_flight.to_string()))
        } else {
            None
        };
        let transactional_id = r.raw("transactional.id").map(str::to_string);
        if transactional_id.is_some() && explicit_idempotence && !idempotence {
            return Err(invalid(
                "enable.idempotence",
                "false",
                "a transactional.id needs idempotence",
            ));
        }
        if idempotence {
            if let Some((name, value)) = conflict {
                if explicit_idempotence || transactional_id.is_some() {
                    return Err(invalid(name, &value, "enable.idempotence=true needs acks=all and max.in.flight.requests.per.connection <= 5"));
                }
                idempotence = false;
            }
        }
        let common = r.common()?;
        let linger = r.ms("linger.ms");
        let delivery_timeout = r.ms("delivery.timeout.ms");
        use sluice_protocol::record::compression::Compression;
        let compression_level = match compression {
            Compression::Gzip => Some(r.int("compression.gzip.level") as i32).filter(|&l| l != -1),
            Compression::Zstd => Some(r.int("compression.zstd.level") as i32),
            _ => None,
        };
        // Kafka's gzip range has a hole at 0 (-1 means zlib's default).
        if r.int("compression.gzip.level") == 0 {
            return Err(invalid("compression.gzip.level", "0", "must be 1 to 9, or -1"));
        }
        let config = ProducerConfig {
            common,
            acks,
            batch_size: r.int("batch.size") as usize,
            linger,
            compression,
            compression_level,
            max_request_size: r.int("max.request.size") as usize,
            buffer_memory: r.int("buffer.memory").min(isize::MAX as i64) as usize,
            max_block: r.ms("max.block.ms"),
            idempotence,
            max_in_flight,
            retries: r.int("retries") as u32,
            delivery_timeout,
            partitioner_ignore_keys: r.bool("partitioner.ignore.keys"),
            transactional_id,
            transaction_timeout: r.ms("transaction.timeout.ms"),
        };
        config.check()?;
        Ok(config)
    }

    /// The rules between properties, as the Java client enforces them; also run on a
    /// typed config changed field by field.
    ///
    /// # Errors
    /// [`ClientError::Config`] naming the property that conflicts.
    pub fn check(&self) -> Result<()> {
        if self.delivery_timeout < self.linger + self.common.request_timeout {
            return Err(invalid(
                "delivery.timeout.ms",
                &self.delivery_timeout.as_millis().to_string(),
                "must be at least linger.ms + request.timeout.ms",
            ));
        }
        if self.transactional_id.is_some() && !self.idempotence {
            return Err(invalid(
                "enable.idempotence",
                "false",
                "a transactional.id needs idempotence",
            ));
        }
        if self.idempotence && (self.acks != Acks::All || self.max_in_flight > 5) {
            return Err(invalid(
                "enable.idempotence",
                "true",
                "needs acks=all and max.in.flight.requests.per.connection <= 5",
            ));
        }
        Ok(())
    }
}

/// `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// Start at the log start offset.
    Earliest,
    /// Start at the high watermark.
    Latest,
    /// Fail with [`ClientError::NoOffsetForPartition`].
    None,
}

/// The consumer's validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// What every client reads.
    pub common: CommonConfig,
    /// `group.id`.
    pub group_id: Option<String>,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// `auto.offset.reset`.
    pub auto_offset_reset: OffsetReset,
    /// `enable.auto.commit`.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub auto_commit_interval: Duration,
    /// `fetch.min.bytes`.
    pub fetch_min_bytes: i32,
    /// `fetch.max.wait.ms`.
    pub fetch_max_wait: Duration,
    /// `fetch.max.bytes`.
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub max_partition_fetch_bytes: i32,
    /// `max.poll.records`.
    pub max_poll_records: usize,
    /// `isolation.level` is read_committed.
    pub read_committed: bool,
    /// `check.crcs`.
    pub check_crcs: bool,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`.
    pub max_poll_interval: Duration,
    /// `partition.assignment.strategy`, split.
    pub assignors: Vec<String>,
    /// `allow.auto.create.topics`.
    pub allow_auto_create_topics: bool,
}

impl ConsumerConfig {
    /// Validates `config` for a consumer.
    ///
    /// # Errors
    /// [`ClientError::Config`] naming the first property that is wrong.
    pub fn new(config: &ClientConfig) -> Result<Self> {
        let r = config.validate(|roles| roles.consumer)?;
        let auto_offset_reset =
            match r.raw("auto.offset.reset").map(str::to_ascii_lowercase).as_deref() {
                Some("earliest") => OffsetReset::Earliest,
                Some("none") => OffsetReset::None,
                _ => OffsetReset::Latest,
            };
        let assignors: Vec<String> = r
            .raw("partition.assignment.strategy")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        for a in &assignors {
            if !["range", "roundrobin", "cooperative-sticky"].contains(&a.as_str()) {
                return Err(invalid(
                    "partition.assignment.strategy",
                    a,
                    "known assignors: range, roundrobin, cooperative-sticky",
                ));
            }
        }
        let session_timeout = r.ms("session.timeout.ms");
        let heartbeat_interval = r.ms("heartbeat.interval.ms");
        if heartbeat_interval >= session_timeout {
            return Err(invalid(
                "heartbeat.interval.ms",
                &heartbeat_interval.as_millis().to_string(),
                "must be lower than session.timeout.ms",
            ));
        }
        Ok(ConsumerConfig {
            common: r.common()?,
            group_id: r.string("group.id"),
            group_instance_id: r.string("group.instance.id"),
            auto_offset_reset,
            enable_auto_commit: r.bool("enable.auto.commit"),
            auto_commit_interval: r.ms("auto.commit.interval.ms"),
            fetch_min_bytes: r.int("fetch.min.bytes") as i32,
            fetch_max_wait: r.ms("fetch.max.wait.ms"),
            fetch_max_bytes: r.int("fetch.max.bytes") as i32,
            max_partition_fetch_bytes: r.int("max.partition.fetch.bytes") as i32,
            max_poll_records: r.int("max.poll.records") as usize,
            read_committed: r
                .raw("isolation.level")
                .is_some_and(|v| v.eq_ignore_ascii_case("read_committed")),
            check_crcs: r.bool("check.crcs"),
            session_timeout,
            heartbeat_interval,
            max_poll_interval: r.ms("max.poll.interval.ms"),
            assignors,
            allow_auto_create_topics: r.bool("allow.auto.create.topics"),
        })
    }
}

/// The admin client's validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// What every client reads.
    pub common: CommonConfig,
    /// `default.api.timeout.ms`.
    pub default_api_timeout: Duration,
}

impl AdminConfig {
    /// Validates `config` for an admin client.
    ///
    /// # Errors
    /// [`ClientError::Config`] naming the first property that is wrong.
    pub fn new(config: &ClientConfig) -> Result<Self> {
        let r = config.validate(|roles| roles.admin)?;
        Ok(AdminConfig { common: r.common()?, default_api_timeout: r.ms("default.api.timeout.ms") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ClientConfig {
        ClientConfig::new().with("bootstrap.servers", "127.0.0.1:9092")
    }

    #[test]
    fn defaults_are_the_java_clients() {
        let c = ProducerConfig::new(&base()).unwrap();
        assert_eq!((c.batch_size, c.linger, c.acks), (16384, Duration::from_millis(5), Acks::All));
        assert!(c.idempotence);
        assert_eq!((c.max_in_flight, c.buffer_memory), (5, 32 << 20));
        let c = ConsumerConfig::new(&base()).unwrap();
        assert_eq!((c.max_poll_records, c.fetch_max_bytes), (500, 52428800));
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        let c = AdminConfig::new(&base()).unwrap();
        assert_eq!(c.default_api_timeout, Duration::from_secs(60));
    }

    #[test]
    fn refuses_bad_values_with_the_property_named() {
        for (name, value) in [
            ("batch.size", "-1"),
            ("batch.size", "2147483648"),
            ("linger.ms", "soon"),
            ("acks", "2"),
            ("compression.type", "brotli"),
            ("enable.idempotence", "yes"),
            ("compression.zstd.level", "23"),
            ("compression.gzip.level", "10"),
            ("compression.gzip.level", "0"),
            ("no.such.property", "1"),
        ] {
            let err = ProducerConfig::new(&base().with(name, value)).unwrap_err();
            assert!(
                matches!(&err, ClientError::Config { name: n, .. } if n == name),
                "{name}={value}: {err}"
            );
            // A known property is refused for its value, not as a typo.
            let known = name != "no.such.property";
            assert_eq!(known, !err.to_string().contains("unknown property"), "{name}: {err}");
        }
        assert!(
            ProducerConfig::new(&ClientConfig::new()).is_err(),
            "bootstrap.servers is required"
        );
        assert!(
            ProducerConfig::new(&ClientConfig::new().with("bootstrap.servers", "nohost")).is_err()
        );
    }

    #[test]
    fn idempotence_conflicts_as_in_the_java_client() {
        let c = ProducerConfig::new(&base().with("acks", "1")).unwrap();
        assert!(!c.idempotence, "a default idempotence gives way to acks=1");
        let explicit = base().with("acks", "1").with("enable.idempotence", "true");
        assert!(ProducerConfig::new(&explicit).is_err());
    }

    #[test]
    fn other_clients_properties_are_ignored_unknown_ones_refused() {
        assert!(ProducerConfig::new(&base().with("group.id", "g")).is_ok());
        assert!(ConsumerConfig::new(&base().with("linger.ms", "oops")).is_ok());
        assert!(ConsumerConfig::new(&base().with("group.idd", "g")).is_err());
    }

    #[test]
    fn properties_files_parse() {
        let c = ClientConfig::from_properties("# c\nbootstrap.servers = a:1,b:2\n! x\nacks: 1\n")
            .unwrap();
        assert_eq!(c.get("bootstrap.servers"), Some("a:1,b:2"));
        assert_eq!(c.get("acks"), Some("1"));
        assert_eq!(ProducerConfig::new(&c).unwrap().common.bootstrap, vec!["a:1", "b:2"]);
        let listed: Vec<(&str, &str)> = c.iter().collect();
        assert_eq!(listed, [("acks", "1"), ("bootstrap.servers", "a:1,b:2")]);
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let (b, m) = (Duration::from_millis(100), Duration::from_millis(1000));
        assert_eq!(exponential(b, m, 1, 0.0), b);
        assert_eq!(exponential(b, m, 3, 0.0), Duration::from_millis(400));
        assert_eq!(exponential(b, m, 30, 0.0), m);
        assert_eq!(exponential(b, m, 1, 1.0), Duration::from_millis(120));
    }
}
