//! The consumer: `assign` partitions (or, with a group, `subscribe`), then `poll` for
//! records. Positions, commits and seeks follow Kafka's Java consumer.
//!
//! The fetch path and its copy budget are in [`fetcher`]; records are zero-copy slices
//! ([`records`]). This file holds positions, polls and seeks; `commits.rs` the committed
//! offsets, `membership.rs` the group member's joins and rebalance callbacks ([`group`]
//! speaks the group protocol). One `Consumer` is used from one task (`&mut self`), as Kafka's is from
//! one thread; fetches run in the background between polls.

pub mod assignor;
mod commits;
pub mod fetcher;
pub mod group;
mod membership;
pub mod offsets;
pub mod protocol;
pub mod records;
pub mod stream;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::messages::{Request, Response};
use tokio::task::JoinSet;

use crate::cluster::{unexpected, Cluster};
use crate::config::{ClientConfig, ConsumerConfig, OffsetReset};
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;
use crate::metrics::{ConsumerMetrics, Metric, Report};
use crate::net::Connection;
use fetcher::{FetchPlan, PartitionState, Start};
use group::Member;
pub use group::{BoxFuture, RebalanceListener};
use membership::Callback;
pub use offsets::{OffsetAndMetadata, OffsetAndTimestamp};
use offsets::{EARLIEST, LATEST};
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

    /// Waits up to `timeout` for records and returns at most `max.poll.records`; an empty
    /// list when none arrived in time.
    ///
    /// # Errors
    /// A partition's fetch error (once), [`ClientError::NoOffsetForPartition`] with
    /// `auto.offset.reset=none`, [`ClientError::CorruptRecord`], [`ClientError::Closed`].
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        self.set_whole_batches(false);
        let max = self.config.max_poll_records;
        let records = self
            .poll_with(timeout, |partitions, start| fetcher::take(partitions, max, start))
            .await?;
        let len = |b: &Option<bytes::Bytes>| b.as_ref().map_or(0, |b| b.len() as u64);
        let bytes = records
            .iter()
            .map(|r| {
                let headers: u64 = r.headers.iter().map(|(k, v)| k.len() as u64 + len(v)).sum();
                len(&r.key) + len(&r.value) + headers
            })
            .sum();
        self.metrics.consumed(records.len() as u64, bytes);
        Ok(records)
    }

    /// As [`Self::poll`], but returns whole record batches as fetched, up to
    /// `fetch.max.bytes`, without decompressing them: for passthrough (the mirror).
    /// Positions move past each batch returned, control batches included.
    ///
    /// # Errors
    /// As [`Self::poll`].
    pub async fn poll_batches(&mut self, timeout: Duration) -> Result<Vec<fetcher::FetchedBatch>> {
        self.set_whole_batches(true);
        let max = self.config.fetch_max_bytes.max(1) as usize;
        let batches = self
            .poll_with(timeout, |partitions, start| fetcher::take_batches(partitions, max, start))
            .await?;
        let data = batches.iter().filter(|b| !b.control);
        let records = data.clone().map(|b| u64::from(b.records)).sum();
        self.metrics.consumed(records, data.map(|b| b.bytes.len() as u64).sum());
        Ok(batches)
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

    /// Switching between records and batches drops what was buffered in the other form;
    /// positions stay.
    fn set_whole_batches(&mut self, on: bool) {
        if self.whole_batches != on {
            self.whole_batches = on;
            for state in self.partitions.values_mut() {
                if let Some(position) = state.position {
                    state.seek(position);
                }
            }
        }
    }

    async fn poll_with<T>(
        &mut self,
        timeout: Duration,
        mut take: impl FnMut(&mut BTreeMap<TopicPartition, PartitionState>, usize) -> Vec<T>,
    ) -> Result<Vec<T>> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        let deadline = Instant::now() + timeout;
        loop {
            self.maybe_auto_commit().await;
            if let Err(e) = self.cluster.refresh_if_stale().await {
                tracing::debug!(error = %e, "metadata refresh failed");
            }
            self.ensure_group().await?;
            self.update_positions().await?;
            if let Some(error) = self.partitions.values_mut().find_map(|s| s.error.take()) {
                return Err(error);
            }
            let records = take(&mut self.partitions, self.round_robin);
            self.round_robin = self.round_robin.wrapping_add(1);
            self.send_fetches().await;
            if !records.is_empty() {
                return Ok(records);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(records);
            }
            if self.fetches.is_empty() {
                // Nothing can fetch (no leader, no partitions, all paused): wait a little.
                let wake = (now + self.cluster.retry_backoff(1)).min(deadline);
                tokio::time::sleep_until(wake.into()).await;
                continue;
            }
            let signals = self.member.as_ref().map(|m| m.signals.clone());
            let rebalance = async {
                match &signals {
                    Some(s) => s.notify.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                answer = tokio::time::timeout_at(deadline.into(), self.fetches.join_next()) => match answer {
                    Ok(Some(Ok(answer))) => self.apply(answer),
                    Ok(_) => {}
                    Err(_) => return Ok(Vec::new()),
                },
                _ = rebalance => {}
            }
        }
    }

    fn apply(&mut self, (plan, answer, inflated): FetchAnswer) {
        self.busy_nodes.remove(&plan.node);
        let applied = fetcher::apply(
            &mut self.partitions,
            plan,
            answer,
            inflated,
            &self.config,
            self.whole_batches,
        );
        if applied.refresh_metadata {
            self.cluster.invalidate_metadata();
        }
    }

    async fn send_fetches(&mut self) {
        // Answers that already arrived free their brokers for the next fetch.
        while let Some(Ok(answer)) = self.fetches.try_join_next() {
            self.apply(answer);
        }
        let busy = &self.busy_nodes;
        let (plans, unknown_leader) = self.cluster.with_metadata(|m| {
            fetcher::plan(&mut self.partitions, m, &self.config, &|n| busy.contains(&n))
        });
        if unknown_leader {
            self.cluster.invalidate_metadata();
        }
        for plan in plans {
            let conn = match self.cluster.connection(plan.node).await {
                Ok(conn) => conn,
                Err(e) => {
                    self.apply((plan, Err(e), Default::default()));
                    continue;
                }
            };
            let mut version = match conn.version(ApiKey::Fetch) {
                Ok(v) => v,
                Err(e) => {
                    self.apply((plan, Err(e), Default::default()));
                    continue;
                }
            };
            if version >= 13 && !self.cluster.with_metadata(|m| fetcher::has_topic_ids(&plan, m)) {
                version = 12;
            }
            let request =
                self.cluster.with_metadata(|m| fetcher::request(&plan, m, &self.config, version));
            match conn.send(version, &Request::Fetch(request)).await {
                Ok(pending) => {
                    self.busy_nodes.insert(plan.node);
                    let addr = conn.addr().to_string();
                    let records = !self.whole_batches;
                    let metrics = self.metrics.clone();
                    let sent = Instant::now();
                    self.fetches.spawn(async move {
                        let answer = match pending.wait().await {
                            Ok(Response::Fetch(r)) => {
                                let bytes = r
                                    .responses
                                    .iter()
                                    .flat_map(|t| &t.partitions)
                                    .map(|p| p.records.as_ref().map_or(0, |b| b.len() as u64))
                                    .sum();
                                metrics.fetched(bytes, sent.elapsed());
                                Ok(r)
                            }
                            Ok(other) => Err(unexpected(&addr, &other)),
                            Err(e) => Err(e),
                        };
                        let inflated = match &answer {
                            Ok(response) if records => fetcher::inflate(response),
                            _ => Default::default(),
                        };
                        (plan, answer, inflated)
                    });
                }
                Err(e) => self.apply((plan, Err(e), Default::default())),
            }
        }
    }

    /// Finds a position for every partition that has none: the committed offset, else
    /// `auto.offset.reset`.
    async fn update_positions(&mut self) -> Result<()> {
        let missing: Vec<(TopicPartition, Start)> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.position.is_none())
            .map(|(tp, s)| (tp.clone(), s.start))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut reset: Vec<(TopicPartition, OffsetReset)> = Vec::new();
        let from_committed: Vec<TopicPartition> = missing
            .iter()
            .filter(|(_, s)| *s == Start::Committed)
            .map(|(tp, _)| tp.clone())
            .collect();
        if !from_committed.is_empty() {
            let committed = if self.config.group_id.is_some() {
                self.committed(&from_committed).await?
            } else {
                HashMap::new()
            };
            for tp in from_committed {
                match committed.get(&tp) {
                    Some(om) => self.partitions.get_mut(&tp).expect("assigned").seek(om.offset),
                    None => reset.push((tp, self.config.auto_offset_reset)),
                }
            }
        }
        for (tp, start) in missing {
            if let Start::Reset(policy) = start {
                reset.push((tp, policy));
            }
        }
        let mut lookups = Vec::new();
        for (tp, policy) in reset {
            match policy {
                OffsetReset::Earliest => lookups.push((tp, EARLIEST)),
                OffsetReset::Latest => lookups.push((tp, LATEST)),
                OffsetReset::None => {
                    return Err(ClientError::NoOffsetForPartition {
                        topic: tp.topic.to_string(),
                        partition: tp.partition,
                    })
                }
            }
        }
        if lookups.is_empty() {
            return Ok(());
        }
        self.cluster.refresh_if_stale().await?;
        let found = match offsets::list_offsets(&self.cluster, &lookups, self.config.read_committed)
            .await
        {
            Ok(found) => found,
            Err(e) if e.is_retriable() => {
                // Leader unknown or moving: the next poll tries again.
                tracing::debug!(error = %e, "offset lookup failed");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        for (tp, _) in lookups {
            if let (Some(found), Some(state)) = (found.get(&tp), self.partitions.get_mut(&tp)) {
                state.seek(found.offset);
            }
        }
        Ok(())
    }

    /// Sets the next offset `poll` returns for `tp`.
    ///
    /// # Errors
    /// [`ClientError::UnknownPartition`] if `tp` is not assigned.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.state(tp)?.seek(offset);
        Ok(())
    }

    /// Moves each partition to its log start offset (looked up on the next poll).
    ///
    /// # Errors
    /// [`ClientError::UnknownPartition`] if a partition is not assigned.
    pub fn seek_to_beginning(&mut self, tps: &[TopicPartition]) -> Result<()> {
        for tp in tps {
            self.state(tp)?.reset(Start::Reset(OffsetReset::Earliest));
        }
        Ok(())
    }

    /// Moves each partition to its end (looked up on the next poll).
    ///
    /// # Errors
    /// [`ClientError::UnknownPartition`] if a partition is not assigned.
    pub fn seek_to_end(&mut self, tps: &[TopicPartition]) -> Result<()> {
        for tp in tps {
            self.state(tp)?.reset(Start::Reset(OffsetReset::Latest));
        }
        Ok(())
    }

    fn state(&mut self, tp: &TopicPartition) -> Result<&mut PartitionState> {
        self.partitions.get_mut(tp).ok_or_else(|| ClientError::UnknownPartition {
            topic: tp.topic.to_string(),
            partition: tp.partition,
            partitions: 0,
        })
    }

    /// The next offset `poll` returns for `tp`, looked up first if unknown.
    ///
    /// # Errors
    /// As [`Self::poll`]'s lookup of positions.
    pub async fn position(&mut self, tp: &TopicPartition) -> Result<i64> {
        self.state(tp)?;
        let deadline = Instant::now() + self.config.common.request_timeout;
        loop {
            self.update_positions().await?;
            if let Some(p) = self.partitions.get(tp).and_then(|s| s.position) {
                return Ok(p);
            }
            if Instant::now() >= deadline {
                return Err(ClientError::RequestTimeout {
                    addr: "leader".into(),
                    context: format!("position of {tp}"),
                    timeout: self.config.common.request_timeout,
                });
            }
            self.cluster.refresh_metadata().await.ok();
            tokio::time::sleep(self.cluster.retry_backoff(1)).await;
        }
    }

    /// How far `tp`'s position is behind its high watermark, as of the last fetch.
    pub fn lag(&self, tp: &TopicPartition) -> Option<i64> {
        let s = self.partitions.get(tp)?;
        let end = if self.config.read_committed { s.last_stable_offset } else { s.high_watermark };
        (end >= 0).then(|| (end - s.position.unwrap_or(end)).max(0))
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

    /// For each partition, the first offset whose timestamp is at or after the given one
    /// (`None` if there is none).
    ///
    /// # Errors
    /// A partition's ListOffsets error, or a network error.
    pub async fn offsets_for_times(
        &self,
        query: &[(TopicPartition, i64)],
    ) -> Result<HashMap<TopicPartition, Option<OffsetAndTimestamp>>> {
        self.cluster.add_interest(query.iter().map(|(tp, _)| &*tp.topic));
        self.cluster.refresh_if_stale().await?;
        let found = offsets::list_offsets(&self.cluster, query, self.config.read_committed).await?;
        Ok(query.iter().map(|(tp, _)| (tp.clone(), found.get(tp).copied())).collect())
    }

    /// Each partition's log start offset.
    ///
    /// # Errors
    /// As [`Self::offsets_for_times`].
    pub async fn beginning_offsets(
        &self,
        tps: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        self.edge_offsets(tps, EARLIEST).await
    }

    /// Each partition's end: the high watermark (last stable offset with read_committed).
    ///
    /// # Errors
    /// As [`Self::offsets_for_times`].
    pub async fn end_offsets(
        &self,
        tps: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        self.edge_offsets(tps, LATEST).await
    }

    async fn edge_offsets(
        &self,
        tps: &[TopicPartition],
        ts: i64,
    ) -> Result<HashMap<TopicPartition, i64>> {
        let query: Vec<(TopicPartition, i64)> = tps.iter().map(|tp| (tp.clone(), ts)).collect();
        let found = self.offsets_for_times(&query).await?;
        Ok(found.into_iter().filter_map(|(tp, o)| o.map(|o| (tp, o.offset))).collect())
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
