//! The property table: one row per property the client knows (name, type and bounds,
//! default, the clients that read it, documentation), and the check of a value against
//! its row. Everything else in [`crate::config`] reads these rows, so there is one rule
//! per property.

use super::invalid;
use crate::error::Result;

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

pub(super) fn check(prop: &Property, value: &str) -> Result<()> {
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
