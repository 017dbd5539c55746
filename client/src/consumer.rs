//! The consumer: `assign` partitions (or, with a group, `subscribe`), then `poll` for
//! records. Positions, commits and seeks follow Kafka's Java consumer.
//!
//! The fetch path and its copy budget are in [`fetcher`]; records are zero-copy slices
//! ([`records`]). This file holds the consumer's construction, subscriptions and
//! assignment, pauses and close; `poll.rs` the polls and the fetches they start,
//! `positions.rs` positions, seeks and offset lookups, `commits.rs` the committed
//! offsets, `membership.rs` the group member's joins and rebalance callbacks ([`group`]
//! speaks the group protocol). One `Consumer` is used from one task (`&mut self`), as
//! Kafka's is from one thread; fetches run in the background between polls.

pub mod assignor;
mod commits;
pub mod fetcher;
pub mod group;
mod membership;
pub mod offsets;
mod poll;
mod positions;
pub mod protocol;
pub mod records;
pub mod stream;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

use crate::cluster::Cluster;
use crate::config::{ClientConfig, ConsumerConfig};
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;
use crate::metrics::{ConsumerMetrics, Metric, Report};
use crate::net::Connection;
use fetcher::{FetchPlan, PartitionState};
use group::Member;
pub use group::{BoxFuture, RebalanceListener};
use membership::Callback;
pub use offsets::{OffsetAndMetadata, OffsetAndTimestamp};
pub use records::ConsumerRecord;

type FetchAnswer = (
    FetchPlan,
    Result<sluice_protocol::kafka_protocol::messages::FetchResponse>,
    fetcher::InflatedResponse,
);

/// An asynchronous Kafka consumer.
pub struct Consumer {
    config: ConsumerConfig,
    cluster: Arc<Cluster>,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    fetches: JoinSet<FetchAnswer>,
    busy_nodes: HashSet<i32>,
    coordinator: Option<Arc<Connection>>,
    member: Option<Member>,
    /// In a mutex only so that `Consumer` is `Sync` (a future holding `&Consumer` across
    /// an await stays `Send`) without asking listeners to be `Sync`: it is only ever
    /// reached through `&mut self`, so the lock is never contended.
    listener: Option<std::sync::Mutex<Box<dyn RebalanceListener>>>,
    next_auto_commit: Instant,
    round_robin: usize,
    closed: bool,
    /// Fetches are kept as whole batches (`poll_batches`), not records.
    whole_batches: bool,
    /// Shared with the fetch tasks, which count what they fetch.
    metrics: Arc<ConsumerMetrics>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("partitions", &self.partitions.len())
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// A consumer with no partitions yet. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`ClientError::Config`] for an invalid configuration.
    pub fn new(config: &ClientConfig) -> Result<Consumer> {
        Ok(Self::from_config(ConsumerConfig::new(config)?))
    }

    /// A consumer from a typed configuration (made by [`ConsumerConfig::new`], then
    /// changed field by field).
    pub fn from_config(config: ConsumerConfig) -> Consumer {
        let cluster = Cluster::new(config.common.clone(), config.allow_auto_create_topics);
        Consumer {
            next_auto_commit: Instant::now() + config.auto_commit_interval,
            config,
            cluster,
            partitions: BTreeMap::new(),
            fetches: JoinSet::new(),
            busy_nodes: HashSet::new(),
            coordinator: None,
            member: None,
            listener: None,
            round_robin: 0,
            closed: false,
            whole_batches: false,
            metrics: Arc::default(),
        }
    }

    /// The validated configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Joins the group (`group.id`) as a member subscribing to `topics`; the group's
    /// leader assigns partitions, and `listener` (if any) hears of every change. The join
    /// happens in the next `poll`.
    ///
    /// # Errors
    /// [`ClientError::Config`] without `group.id` or with an unknown assignor.
    pub fn subscribe(
        &mut self,
        topics: &[&str],
        listener: Option<Box<dyn RebalanceListener>>,
    ) -> Result<()> {
        let member = Member::new(&self.config, topics.iter().map(|t| t.to_string()).collect())?;
        self.cluster.add_interest(topics.iter().copied());
        self.partitions.clear();
        self.member = Some(member);
        self.listener = listener.map(std::sync::Mutex::new);
        Ok(())
    }

    /// As [`Self::subscribe`], to every topic whose whole name matches `pattern` (a Rust
    /// regex; internal topics excluded), now and as topics appear or go.
    ///
    /// # Errors
    /// [`ClientError::Config`] for an invalid pattern, and as [`Self::subscribe`].
    pub fn subscribe_pattern(
        &mut self,
        pattern: &str,
        listener: Option<Box<dyn RebalanceListener>>,
    ) -> Result<()> {
        let anchored = format!("^(?:{pattern})$");
        let regex = regex::Regex::new(&anchored).map_err(|e| ClientError::Config {
            name: "subscription pattern".into(),
            value: pattern.to_string(),
            reason: e.to_string(),
        })?;
        let mut member = Member::new(&self.config, Vec::new())?;
        member.pattern = Some(regex);
        self.partitions.clear();
        self.member = Some(member);
        self.listener = listener.map(std::sync::Mutex::new);
        Ok(())
    }

    /// Matches the pattern subscription against every topic when it is due; a change in
    /// the matched set needs a join.
    async fn match_pattern(&mut self) -> Result<()> {
        let now = Instant::now();
        let Some(member) = self.member.as_ref() else { return Ok(()) };
        let Some(pattern) = member.pattern.clone() else { return Ok(()) };
        if member.next_pattern_check.is_some_and(|at| now < at) {
            return Ok(());
        }
        let response = match self.cluster.metadata_request(None, false).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut topics: Vec<String> = response
            .topics
            .iter()
            .filter(|t| t.error_code == 0 && !t.is_internal)
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .filter(|name| pattern.is_match(name))
            .collect();
        topics.sort();
        let member = self.member.as_mut().expect("checked above");
        member.next_pattern_check = Some(now + self.config.common.metadata_max_age);
        if topics != member.topics {
            self.cluster.add_interest(topics.iter().map(String::as_str));
            member.topics = topics;
            member.needs_join = true;
        }
        Ok(())
    }

    /// Consumes exactly `partitions` from now on (no group membership); positions of
    /// partitions kept are kept.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let wanted: HashSet<TopicPartition> = partitions.into_iter().collect();
        self.partitions.retain(|tp, _| wanted.contains(tp));
        for tp in wanted {
            self.partitions.entry(tp).or_default();
        }
        self.cluster.add_interest(self.partitions.keys().map(|tp| &*tp.topic));
    }

    /// The group membership to pass to a transactional producer's
    /// `send_offsets_to_transaction` (Java's `groupMetadata()`): the group, the generation
    /// and member id of the last join, and `group.instance.id`. `None` without `group.id`.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        let group_id = self.config.group_id.clone()?;
        let (generation_id, member_id) = self
            .member
            .as_ref()
            .map_or((-1, String::new()), |m| (m.generation, m.member_id.clone()));
        Some(ConsumerGroupMetadata {
            group_id,
            generation_id,
            member_id,
            group_instance_id: self.config.group_instance_id.clone(),
        })
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    /// The consumer's metrics, as the Java consumer names them
    /// (`consumer-fetch-manager-metrics`: records and bytes consumed, fetches, their
    /// latency and size; `consumer-metrics`: requests, bytes and connections; see
    /// [`crate::metrics`]).
    pub fn metrics(&self) -> Vec<Metric> {
        let network = self.cluster.network_metrics();
        let client_id = &self.config.common.client_id;
        let elapsed = network.elapsed();
        let mut out = Vec::new();
        let group = "consumer-fetch-manager-metrics";
        self.metrics.report(&mut Report::new(&mut out, group, client_id, elapsed));
        network.report(&mut Report::new(&mut out, "consumer-metrics", client_id, elapsed));
        out
    }

    /// Stops fetching `tps` until [`Self::resume`]; their positions stay.
    pub fn pause(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            if let Some(s) = self.partitions.get_mut(tp) {
                s.paused = true;
            }
        }
    }

    /// Fetches `tps` again.
    pub fn resume(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            if let Some(s) = self.partitions.get_mut(tp) {
                s.paused = false;
            }
        }
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.partitions.iter().filter(|(_, s)| s.paused).map(|(tp, _)| tp.clone()).collect()
    }

    /// Commits positions when auto commit is on, then closes the connections.
    ///
    /// # Errors
    /// The final commit's error (the consumer closes anyway).
    pub async fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = if self.config.enable_auto_commit && self.config.group_id.is_some() {
            self.commit().await
        } else {
            Ok(())
        };
        if let Some(member) = self.member.as_mut() {
            member.stop_heartbeat();
            let owned = member.owned_partitions();
            if !owned.is_empty() {
                self.call_listener(Callback::Revoked, &owned).await;
            }
        }
        if let Some(member) = self.member.take() {
            // Static members keep their place for session.timeout.ms (KIP-345).
            if member.instance_id.is_none() && member.generation >= 0 {
                if let Ok(conn) = self.coordinator().await {
                    if let Err(e) =
                        group::leave(&conn, &member.group, &member.member_id, None).await
                    {
                        tracing::debug!(error = %e, "leave group failed");
                    }
                }
            }
        }
        self.closed = true;
        self.fetches.abort_all();
        self.cluster.close().await;
        result
    }
}

/// A consumer's group membership, for offsets committed in a transaction (KIP-447): the
/// group coordinator refuses them from a member that is no longer in the generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// `group.id`.
    pub group_id: String,
    /// The generation joined; -1 for none (offsets then are checked by group only).
    pub generation_id: i32,
    /// The member id; empty for none.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Metadata naming only the group (Kafka's `new ConsumerGroupMetadata(groupId)`).
    pub fn group(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    /// Futures that hold `&Consumer` across an await (the mirror's fetch loop does) can
    /// be spawned only if the consumer is `Sync`.
    #[test]
    fn the_consumer_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<super::Consumer>();
    }
}
