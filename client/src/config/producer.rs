//! The producer's typed configuration: [`Acks`], [`ProducerConfig`] and the Java
//! client's rules between producer properties (idempotence, transactions, timeouts).

use std::time::Duration;

use super::{invalid, ClientConfig, CommonConfig};
use crate::error::Result;

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
    /// [`ClientError::Config`](crate::ClientError::Config) naming the first property that
    /// is wrong.
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
    /// [`ClientError::Config`](crate::ClientError::Config) naming the property that conflicts.
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
