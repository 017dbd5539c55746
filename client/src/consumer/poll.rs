//! The consumer's polls: `poll` (records) and `poll_batches` (whole batches, for the
//! mirror), the loop they share, and the background fetches it starts, one per broker,
//! and applies as they answer (the fetch path itself is in [`super::fetcher`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::messages::{Request, Response};

use super::fetcher::{self, PartitionState};
use super::{Consumer, ConsumerRecord, FetchAnswer};
use crate::cluster::unexpected;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

impl Consumer {
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
}
