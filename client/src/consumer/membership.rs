//! The consumer as a group member: joining and rejoining, the partitions a rebalance
//! gives and takes, and the listener's callbacks around it (the protocol itself is in
//! [`super::group`]).

use std::collections::BTreeMap;
use std::time::Instant;

use super::assignor;
use super::group::{self, Member, Round};
use super::Consumer;
use crate::error::Result;
use crate::metadata::TopicPartition;

impl Consumer {
    /// Rebalance work for the next poll: acts on the heartbeat's flags, notices changed
    /// partition counts, and joins when needed.
    pub(super) async fn ensure_group(&mut self) -> Result<()> {
        self.match_pattern().await?;
        let Some(member) = self.member.as_mut() else { return Ok(()) };
        *member.signals.last_poll.lock().expect("lock") = Some(Instant::now());
        if member.signals.lost.swap(false, std::sync::atomic::Ordering::AcqRel) {
            let lost = member.owned_partitions();
            member.owned.clear();
            member.generation = -1;
            if member.signals.reset_member_id.swap(false, std::sync::atomic::Ordering::AcqRel) {
                member.member_id.clear();
            }
            member.stop_heartbeat();
            member.needs_join = true;
            self.remove_partitions(&lost);
            if !lost.is_empty() {
                self.call_listener(Callback::Lost, &lost).await;
            }
        }
        let Some(member) = self.member.as_mut() else { return Ok(()) };
        if member.signals.rejoin.swap(false, std::sync::atomic::Ordering::AcqRel) {
            member.needs_join = true;
        }
        if !member.needs_join {
            let counts = self.cluster.with_metadata(|m| {
                member
                    .topics
                    .iter()
                    .filter_map(|t| m.partition_count(t).map(|n| (t.clone(), n)))
                    .collect::<Vec<_>>()
            });
            if counts.iter().any(|(t, n)| member.assigned_metadata.get(t) != Some(n)) {
                member.needs_join = true;
            }
        }
        while self.member.as_ref().is_some_and(|m| m.needs_join) {
            if !self.join_once().await? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// One join; `false` when it failed in a way the next poll retries.
    pub(super) async fn join_once(&mut self) -> Result<bool> {
        let eager = self
            .member
            .as_ref()
            .is_some_and(|m| m.protocol() == assignor::RebalanceProtocol::Eager);
        let owned = self.member.as_ref().map(Member::owned_partitions).unwrap_or_default();
        if self.config.enable_auto_commit && !owned.is_empty() {
            let offsets: Vec<_> = self
                .positions_to_commit()
                .into_iter()
                .filter(|(tp, _)| owned.contains(tp))
                .collect();
            if let Err(e) = self.commit_offsets(&offsets).await {
                tracing::warn!(error = %e, "commit before rebalance failed");
            }
        }
        if eager && !owned.is_empty() {
            self.call_listener(Callback::Revoked, &owned).await;
            self.remove_partitions(&owned);
            if let Some(m) = self.member.as_mut() {
                m.owned.clear();
            }
        }
        let conn = match self.coordinator().await {
            Ok(conn) => conn,
            Err(e) if e.is_retriable() => {
                self.coordinator = None;
                tokio::time::sleep(self.cluster.retry_backoff(1)).await;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let mut member = self.member.take().expect("joining needs a member");
        member.stop_heartbeat();
        let round = group::join_round(&mut member, &conn, &self.cluster, &self.config).await;
        self.member = Some(member);
        let (assigned, changes) = match round {
            Ok(Round::Joined { assigned, changes }) => (assigned, changes),
            Ok(Round::Retry { backoff }) => {
                if backoff {
                    tokio::time::sleep(self.cluster.retry_backoff(1)).await;
                }
                return Ok(true);
            }
            Err(e) if e.is_retriable() => {
                self.coordinator = None;
                tokio::time::sleep(self.cluster.retry_backoff(1)).await;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let revoked: Vec<TopicPartition> =
            changes.revoked.iter().map(|(t, p)| TopicPartition::new(t.as_str(), *p)).collect();
        if !eager && !revoked.is_empty() {
            self.call_listener(Callback::Revoked, &revoked).await;
            self.remove_partitions(&revoked);
        }
        let added: Vec<TopicPartition> =
            changes.added.iter().map(|(t, p)| TopicPartition::new(t.as_str(), *p)).collect();
        let member = self.member.as_mut().expect("still a member");
        member.owned = assigned;
        member.needs_join = changes.rejoin;
        let topics = member.topics.clone();
        let counts: BTreeMap<String, u32> = self.cluster.with_metadata(|m| {
            topics.iter().filter_map(|t| m.partition_count(t).map(|n| (t.clone(), n))).collect()
        });
        member.assigned_metadata.extend(counts);
        group::start_heartbeat(member, self.cluster.clone(), &self.config);
        let owned: Vec<TopicPartition> = member.owned_partitions();
        self.cluster.add_interest(owned.iter().map(|tp| &*tp.topic));
        for tp in owned {
            self.partitions.entry(tp).or_default();
        }
        if !added.is_empty() {
            self.call_listener(Callback::Assigned, &added).await;
        }
        Ok(true)
    }

    pub(super) fn remove_partitions(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            self.partitions.remove(tp);
        }
    }

    pub(super) async fn call_listener(&mut self, which: Callback, partitions: &[TopicPartition]) {
        let Some(listener) = self.listener.take() else { return };
        let mut listener = listener.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        match which {
            Callback::Revoked => listener.on_partitions_revoked(self, partitions).await,
            Callback::Assigned => listener.on_partitions_assigned(self, partitions).await,
            Callback::Lost => listener.on_partitions_lost(self, partitions).await,
        }
        self.listener = Some(std::sync::Mutex::new(listener));
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Callback {
    Revoked,
    Assigned,
    Lost,
}
