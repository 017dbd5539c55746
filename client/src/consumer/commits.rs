//! The consumer's committed offsets: the group coordinator's connection, commits (sync,
//! async, automatic) and reads of what was committed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::group::Member;
use super::offsets::{self, Committer, OffsetAndMetadata};
use super::Consumer;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;
use crate::net::Connection;

impl Consumer {
    pub(super) fn group(&self) -> Result<&str> {
        self.config.group_id.as_deref().ok_or_else(|| ClientError::Config {
            name: "group.id".into(),
            value: String::new(),
            reason: "committed offsets need a group".into(),
        })
    }

    pub(super) async fn coordinator(&mut self) -> Result<Arc<Connection>> {
        if let Some(conn) = self.coordinator.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let group = self.group()?.to_string();
        let conn = offsets::coordinator(&self.cluster, &group).await?;
        self.coordinator = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `op` against the coordinator, finding it again after NOT_COORDINATOR and
    /// friends, within `request.timeout.ms`.
    pub(super) async fn at_coordinator<T, F, Fut>(&mut self, mut op: F) -> Result<T>
    where
        F: FnMut(Arc<Connection>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + self.config.common.request_timeout;
        let mut attempt = 0;
        loop {
            let result = match self.coordinator().await {
                Ok(conn) => op(conn).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_retriable() && Instant::now() < deadline => {
                    if e.needs_metadata_refresh() {
                        self.coordinator = None;
                    }
                    attempt += 1;
                    tokio::time::sleep(self.cluster.retry_backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// The group's committed offsets for `tps` (absent: none committed).
    ///
    /// # Errors
    /// [`ClientError::Config`] without `group.id`; the coordinator's error.
    pub async fn committed(
        &mut self,
        tps: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, OffsetAndMetadata>> {
        let group = self.group()?.to_string();
        let require_stable = self.config.read_committed;
        self.at_coordinator(|conn| {
            let group = group.clone();
            async move { offsets::fetch_committed(&conn, &group, tps, require_stable).await }
        })
        .await
    }

    /// Commits the current position of every assigned partition that has one, and waits.
    ///
    /// # Errors
    /// As [`Self::commit_offsets`].
    pub async fn commit(&mut self) -> Result<()> {
        let offsets = self.positions_to_commit();
        self.commit_offsets(&offsets).await
    }

    /// Commits the given offsets (the next offset to consume, with metadata), and waits.
    ///
    /// # Errors
    /// [`ClientError::Config`] without `group.id`; the first partition error.
    pub async fn commit_offsets(
        &mut self,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let group = self.group()?.to_string();
        let who = self.committer();
        self.at_coordinator(|conn| {
            let (group, who) = (group.clone(), who.clone());
            async move { offsets::commit(&conn, &group, &who, offsets).await }
        })
        .await
    }

    /// Commits the current positions in the background; the handle reports the outcome.
    ///
    /// # Errors
    /// [`ClientError::Config`] without `group.id`.
    pub fn commit_async(&mut self) -> Result<tokio::task::JoinHandle<Result<()>>> {
        let group = self.group()?.to_string();
        let offsets = self.positions_to_commit();
        let who = self.committer();
        let cluster = self.cluster.clone();
        let known = self.coordinator.clone().filter(|c| !c.is_closed());
        Ok(tokio::spawn(async move {
            if offsets.is_empty() {
                return Ok(());
            }
            let conn = match known {
                Some(conn) => conn,
                None => offsets::coordinator(&cluster, &group).await?,
            };
            offsets::commit(&conn, &group, &who, &offsets).await
        }))
    }

    pub(super) fn committer(&self) -> Committer {
        self.member.as_ref().map_or_else(Committer::standalone, Member::committer)
    }

    pub(super) fn positions_to_commit(&self) -> Vec<(TopicPartition, OffsetAndMetadata)> {
        self.partitions
            .iter()
            .filter_map(|(tp, s)| {
                let offset = s.position?;
                // -1: no record consumed yet, or a broker without leader epochs.
                let leader_epoch = (s.last_epoch >= 0).then_some(s.last_epoch);
                Some((
                    tp.clone(),
                    OffsetAndMetadata { offset, leader_epoch, metadata: String::new() },
                ))
            })
            .collect()
    }

    pub(super) async fn maybe_auto_commit(&mut self) {
        if !self.config.enable_auto_commit || self.config.group_id.is_none() {
            return;
        }
        let now = Instant::now();
        if now < self.next_auto_commit {
            return;
        }
        self.next_auto_commit = now + self.config.auto_commit_interval;
        if let Err(e) = self.commit().await {
            tracing::warn!(error = %e, "auto commit failed");
        }
    }
}
