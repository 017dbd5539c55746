//! Where each assigned partition reads from: the lookup of missing positions (the
//! committed offset, else `auto.offset.reset`), seeks, `position` and `lag`, and offset
//! lookups by time or at the log's edges.

use std::collections::HashMap;
use std::time::Instant;

use super::fetcher::{PartitionState, Start};
use super::offsets::{self, OffsetAndTimestamp, EARLIEST, LATEST};
use super::Consumer;
use crate::config::OffsetReset;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

impl Consumer {
    /// Finds a position for every partition that has none: the committed offset, else
    /// `auto.offset.reset`.
    pub(super) async fn update_positions(&mut self) -> Result<()> {
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
}
