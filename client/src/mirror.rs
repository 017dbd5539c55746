//! The mirror: copies topics from a source cluster to a target cluster, batch for batch,
//! committing source offsets only for what the target acknowledged.
//!
//! The path of a batch, with its copy budget:
//! ```text
//! source fetch response (one Bytes per response)
//!   -> Consumer::poll_batches: whole batches, Bytes slices of the response (no copy)
//!   -> token bucket (--max-rate), then a permit from the in-flight byte budget
//!   -> Producer::send_batch: one memcpy into the producer's buffer; base offset,
//!      leader epoch, producer id/epoch/sequence and CRC rewritten (no decompression)
//!   -> target ProduceRequest (acks=all, idempotent)
//!   -> ack loop: acknowledgements awaited in send order, so per partition the
//!      acknowledged position is contiguous
//!   -> every commit interval: OffsetCommit of the acknowledged positions in the source
//!      cluster under the mirror's group, with the target offset in the metadata
//! ```
//! Control batches (transaction markers) are not copied. A transactional batch, or one
//! that starts before the position (a commit inside a batch), is sent as records instead
//! (decoded, re-batched by the producer), and said so in the log.
//!
//! Guarantees: at least once, nothing lost. Each record keeps key, value, headers and
//! timestamp and goes to the same partition number, in order. After a crash the run
//! restarts at the last commit; the target may hold records past it (duplicates when
//! they are sent again), and the commit metadata tells how many.
//!
//! Module map: [`topics`] (which topics, target creation), [`tracker`] (what may be
//! committed), [`rate`] (the token bucket), [`stats`] (counters and lag), [`settings`]
//! (the config file), [`verify`] (comparing the clusters), and `pipeline.rs` (the fetch
//! and ack loops).

mod pipeline;
pub mod rate;
pub mod settings;
pub mod stats;
pub mod topics;
pub mod tracker;
pub mod verify;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::{Admin, OffsetSpec};
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::metadata::TopicPartition;
pub use rate::Rate;
pub use stats::{Snapshot, Stats};
pub use topics::TopicFilter;

/// Why the mirror could not start or stopped.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// A client call failed.
    #[error("{context}: {source}")]
    Client {
        /// What was being done.
        context: String,
        /// The client's error.
        source: ClientError,
    },
    /// A mirror setting is invalid.
    #[error("mirror setting {name}={value}: {reason}")]
    Config {
        /// The setting.
        name: String,
        /// The value given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// Source and target are one cluster and topics keep their names.
    #[error("source and target are the same cluster ({cluster}): a topic would be mirrored into itself; set a rename prefix")]
    SelfMirror {
        /// The cluster id or bootstrap address.
        cluster: String,
    },
    /// The target did not acknowledge a batch (after the producer's retries).
    #[error("{topic}-{partition}: batch at source offset {offset} not delivered to the target: {source}")]
    Delivery {
        /// The source topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The batch's first source offset.
        offset: i64,
        /// Why it failed.
        source: ClientError,
    },
}

impl MirrorError {
    fn client(context: impl Into<String>, source: ClientError) -> Self {
        MirrorError::Client { context: context.into(), source }
    }
}

/// Whether batches are passed through whole or decoded and sent as records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// One source batch, one target batch, no decompression.
    #[default]
    Batches,
    /// Every batch decoded and its records sent (for re-keying, and to measure).
    Records,
}

/// Everything a mirror run needs.
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    /// Client properties for the source cluster (`bootstrap.servers` at least).
    pub source: ClientConfig,
    /// Client properties for the target cluster.
    pub target: ClientConfig,
    /// Regex the whole topic name must match.
    pub topics: String,
    /// Regex of topic names never mirrored.
    pub exclude: Option<String>,
    /// The source consumer group whose committed offsets are the mirror's progress.
    pub group: String,
    /// Prepended to each topic's name on the target.
    pub rename_prefix: String,
    /// Batches or records.
    pub mode: Mode,
    /// Bytes fetched and not yet acknowledged by the target, at most.
    pub max_in_flight_bytes: usize,
    /// Batches in flight per partition, at most; the partition's fetching pauses there.
    pub max_in_flight_batches: usize,
    /// How often source topics are listed again for new topics and partitions.
    pub refresh_interval: Duration,
    /// How often acknowledged positions are committed.
    pub commit_interval: Duration,
    /// A pace, if any.
    pub max_rate: Option<Rate>,
}

impl MirrorConfig {
    /// A mirror of the topics matching `topics` from `source` to `target` (bootstrap
    /// addresses), with the defaults: group `sluice-mirror`, no rename, 64 MiB and 256
    /// batches per partition in flight, topics listed every 10 s, commits every second.
    pub fn new(source: &str, target: &str, topics: &str) -> Self {
        MirrorConfig {
            source: ClientConfig::new().with("bootstrap.servers", source),
            target: ClientConfig::new().with("bootstrap.servers", target),
            topics: topics.to_string(),
            exclude: None,
            group: "sluice-mirror".to_string(),
            rename_prefix: String::new(),
            mode: Mode::Batches,
            max_in_flight_bytes: 64 << 20,
            max_in_flight_batches: 256,
            refresh_interval: Duration::from_secs(10),
            commit_interval: Duration::from_secs(1),
            max_rate: None,
        }
    }
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The counters at the end.
    pub totals: Snapshot,
    /// Records the target held past the last commit at start, sent again by this run;
    /// `None` when some partition's commit did not say where the target was.
    pub resent: Option<u64>,
}

/// A configured mirror; [`Mirror::run`] does the work.
#[derive(Debug)]
pub struct Mirror {
    config: MirrorConfig,
    filter: TopicFilter,
    stats: Arc<Stats>,
}

impl Mirror {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`MirrorError::Config`] for a bad pattern or limit.
    pub fn new(config: MirrorConfig) -> Result<Mirror, MirrorError> {
        let filter =
            TopicFilter::new(&config.topics, config.exclude.as_deref(), &config.rename_prefix)?;
        if config.max_in_flight_bytes == 0 || config.max_in_flight_batches == 0 {
            return Err(MirrorError::Config {
                name: "max.in.flight".into(),
                value: "0".into(),
                reason: "the in-flight limits must be at least 1".into(),
            });
        }
        if config.group.is_empty() {
            return Err(MirrorError::Config {
                name: "group".into(),
                value: String::new(),
                reason: "the mirror commits its progress under a group id".into(),
            });
        }
        Ok(Mirror { config, filter, stats: Arc::new(Stats::default()) })
    }

    /// The live counters, to report progress while it runs.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Mirrors until `shutdown` completes, then stops fetching, waits for the target to
    /// acknowledge what is in flight, commits, and returns.
    ///
    /// # Errors
    /// [`MirrorError::SelfMirror`], a client that cannot be built, a batch the target
    /// did not take ([`MirrorError::Delivery`]: what was acknowledged before it is
    /// committed first), or a source fetch error that is not retriable.
    pub async fn run(
        &self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<Summary, MirrorError> {
        let c = &self.config;
        let source = Arc::new(Admin::new(&c.source).map_err(|e| MirrorError::client("source", e))?);
        let target = Arc::new(Admin::new(&c.target).map_err(|e| MirrorError::client("target", e))?);
        let same = same_cluster(&source, &target, c).await?;
        if same.is_some() && !self.filter.renames() {
            return Err(MirrorError::SelfMirror { cluster: same.unwrap_or_default() });
        }
        if c.mode == Mode::Records {
            tracing::info!("forwarding records, not batches (mode=records): every batch is decoded and re-batched");
        }
        let resent = self.resent_after_restart(&source, &target).await;
        match resent {
            Some(n) => {
                self.stats.resent.store(n, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(resent = n, "resuming: records on the target past the last commit are sent again (duplicates)");
            }
            None => tracing::info!(
                "resuming: how many records past the last commit are on the target is unknown"
            ),
        }
        let outcome = pipeline::run(pipeline::Setup {
            config: c,
            filter: &self.filter,
            // On one cluster a renamed copy would match again and be copied again.
            skip_prefix: same.is_some().then(|| c.rename_prefix.clone()),
            source: source.clone(),
            target: target.clone(),
            stats: self.stats.clone(),
            shutdown,
        })
        .await;
        source.close().await;
        target.close().await;
        outcome?;
        Ok(Summary { totals: self.stats.snapshot(), resent })
    }

    /// Records the target holds past the positions the group committed (read from the
    /// commit metadata); `None` if some commit does not say, or a lookup failed.
    async fn resent_after_restart(&self, source: &Admin, target: &Admin) -> Option<u64> {
        let committed = match source.list_consumer_group_offsets(&self.config.group, None).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "committed offsets unreadable; re-sent records unknown");
                return None;
            }
        };
        let mut at_commit = Vec::new();
        for (tp, om) in committed.iter().filter(|(tp, _)| self.filter.matches(&tp.topic)) {
            let t = tracker::target_in(&om.metadata)?;
            let on_target = TopicPartition::new(self.filter.target_name(&tp.topic), tp.partition);
            at_commit.push((on_target, t));
        }
        if at_commit.is_empty() {
            return Some(0);
        }
        let specs: Vec<(TopicPartition, OffsetSpec)> =
            at_commit.iter().map(|(tp, _)| (tp.clone(), OffsetSpec::Latest)).collect();
        let ends = target.list_offsets(&specs).await.ok()?;
        let resent = at_commit
            .iter()
            .map(|(tp, t)| ends.get(tp).map_or(0, |end| (end.offset - t).max(0) as u64))
            .sum();
        Some(resent)
    }
}

/// The cluster both configs reach, if they reach the same one (same cluster id, or the
/// same bootstrap list when a broker reports none).
async fn same_cluster(
    source: &Admin,
    target: &Admin,
    c: &MirrorConfig,
) -> Result<Option<String>, MirrorError> {
    let s = source
        .describe_cluster()
        .await
        .map_err(|e| MirrorError::client("describe source cluster", e))?;
    let t = target
        .describe_cluster()
        .await
        .map_err(|e| MirrorError::client("describe target cluster", e))?;
    let bootstrap = |cfg: &ClientConfig| cfg.get("bootstrap.servers").unwrap_or("").to_string();
    Ok(match (s.cluster_id, t.cluster_id) {
        (Some(a), Some(b)) if a == b => Some(a),
        _ if bootstrap(&c.source) == bootstrap(&c.target) => Some(bootstrap(&c.source)),
        _ => None,
    })
}
