//! The consumer's typed configuration: [`OffsetReset`] and [`ConsumerConfig`], with the
//! rules between consumer properties (known assignors, heartbeat below session timeout).

use std::time::Duration;

use super::{invalid, ClientConfig, CommonConfig};
use crate::error::Result;

/// `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// Start at the log start offset.
    Earliest,
    /// Start at the high watermark.
    Latest,
    /// Fail with [`ClientError::NoOffsetForPartition`](crate::ClientError::NoOffsetForPartition).
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
    /// [`ClientError::Config`](crate::ClientError::Config) naming the first property that
    /// is wrong.
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
