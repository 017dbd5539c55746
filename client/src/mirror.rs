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
//!   -> offset map: (source base, source last, target base) of the batch, so every
//!      source offset has its exact target offset
//!   -> every commit interval: the map's changes to the checkpoint topic on the target,
//!      then OffsetCommit of the acknowledged positions in the source cluster under the
//!      mirror's group, with the target offset in the metadata
//!   -> with --sync-group-offsets: matching source groups' offsets, translated, committed
//!      in the target cluster
//! ```
//! Control batches (transaction markers) are not copied. A transactional batch, one
//! that starts before the position (a commit inside a batch), or one with holes between
//! its offsets (compacted) is sent as records instead (decoded, re-batched by the
//! producer), and said so in the log.
//!
//! Guarantees: at least once, nothing lost. Each record keeps key, value, headers and
//! timestamp and goes to the same partition number, in order. After a crash the run
//! restarts at the last commit; the target may hold records past it (duplicates when
//! they are sent again), and the commit metadata tells how many.
//!
//! Module map: [`topics`] (which topics, target creation), [`tracker`] (what may be
//! committed), [`offset_map`] (source to target offsets, exactly), [`checkpoint`] (the
//! map on the target), [`group_offsets`] (translating groups' offsets), [`rate`] (the
//! token bucket), [`stats`] (counters, lag, Prometheus text), [`settings`] (the config
//! file), [`verify`] (comparing the clusters), and `pipeline.rs` (the fetch and ack
//! loops).

pub mod checkpoint;
pub mod group_offsets;
pub mod offset_map;
mod pipeline;
pub mod rate;
pub mod settings;
pub mod stats;
pub mod topics;
pub mod tracker;
pub mod verify;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use crate::admin::{Admin, OffsetSpec};
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::metadata::TopicPartition;
use offset_map::Resume;
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
    /// Regex of source group ids whose offsets are translated into the target cluster.
    pub sync_group_offsets: Option<String>,
    /// Where the `sluice-mirror` binary serves Prometheus metrics (the library itself
    /// does not listen: it offers [`Snapshot::prometheus`]).
    pub metrics: Option<SocketAddr>,
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
            sync_group_offsets: None,
            metrics: None,
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
    sync: Option<Regex>,
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
        let sync = config
            .sync_group_offsets
            .as_deref()
            .map(|re| {
                Regex::new(&format!("^(?:{re})$")).map_err(|e| MirrorError::Config {
                    name: "sync.group.offsets".into(),
                    value: re.into(),
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        Ok(Mirror { config, filter, sync, stats: Arc::new(Stats::default()) })
    }

    /// The live counters, to report progress while it runs.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Creates or reads back the checkpoint topic, mirrors until `shutdown` completes,
    /// then stops fetching, waits for the target to acknowledge what is in flight,
    /// commits, syncs group offsets a last time, and returns.
    ///
    /// # Errors
    /// [`MirrorError::SelfMirror`], a client that cannot be built, a checkpoint topic the
    /// target refuses or that cannot be read, a batch the target did not take ([`MirrorError::Delivery`]: what was acknowledged before it is
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
        let checkpoint = checkpoint::topic_name(&c.rename_prefix);
        checkpoint::ensure(&target, &checkpoint).await?;
        let map = checkpoint::load(&c.target, &target, &checkpoint).await?;
        let (resume, resent) = self.resume_points(&source, &target).await;
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
            map,
            resume,
            checkpoint: checkpoint.into(),
            sync: self.sync.clone(),
        })
        .await;
        source.close().await;
        target.close().await;
        outcome?;
        Ok(Summary { totals: self.stats.snapshot(), resent })
    }

    /// Where each partition the mirror's group committed resumes, and how many records
    /// the target holds past those commits (read from the commit metadata): `None` if
    /// some commit does not say, or a lookup failed.
    async fn resume_points(
        &self,
        source: &Admin,
        target: &Admin,
    ) -> (HashMap<TopicPartition, Resume>, Option<u64>) {
        let committed = match source.list_consumer_group_offsets(&self.config.group, None).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "committed offsets unreadable; re-sent records unknown");
                return (HashMap::new(), None);
            }
        };
        let mut resume = HashMap::new();
        let mut at_commit = Vec::new();
        let mut all_known = true;
        for (tp, om) in committed.iter().filter(|(tp, _)| self.filter.matches(&tp.topic)) {
            resume.insert(tp.clone(), Resume { source: om.offset, committed: true, target: None });
            match tracker::target_in(&om.metadata) {
                Some(t) => {
                    let on_target =
                        TopicPartition::new(self.filter.target_name(&tp.topic), tp.partition);
                    at_commit.push((tp.clone(), on_target, t));
                }
                None => all_known = false,
            }
        }
        if at_commit.is_empty() {
            return (resume, all_known.then_some(0));
        }
        let specs: Vec<(TopicPartition, OffsetSpec)> =
            at_commit.iter().map(|(_, tp, _)| (tp.clone(), OffsetSpec::Latest)).collect();
        let Ok(ends) = target.list_offsets(&specs).await else {
            return (resume, None);
        };
        let mut resent = 0;
        for (source_tp, target_tp, t) in &at_commit {
            let Some(end) = ends.get(target_tp) else { continue };
            resent += (end.offset - t).max(0) as u64;
            // A clean stop: the next record lands where the commit says.
            if end.offset == *t {
                if let Some(r) = resume.get_mut(source_tp) {
                    r.target = Some(*t);
                }
            }
        }
        (resume, all_known.then_some(resent))
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
