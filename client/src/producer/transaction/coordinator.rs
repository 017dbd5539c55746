//! The calls to the transaction coordinator (FindCoordinator, InitProducerId,
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn) and TxnOffsetCommit to the group's
//! coordinator, each retried as [`classify`] says until it succeeds, fails for good or
//! its deadline passes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use sluice_protocol::kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use sluice_protocol::kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, FindCoordinatorRequest,
    GroupId, InitProducerIdRequest, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
};
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};

use super::class::{classify, Class};
use super::{aborted, Transactions};
use crate::cluster::{unexpected, Cluster};
use crate::consumer::offsets::OffsetAndMetadata;
use crate::consumer::ConsumerGroupMetadata;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;
use crate::net::Connection;
use crate::producer::accumulator::ProducerStamp;

/// Backoff after CONCURRENT_TRANSACTIONS: the coordinator is finishing the previous
/// transaction's markers, which takes about a round trip, so the first retries come soon
/// (1 ms, doubling) and at most every 20 ms (Java's shortened backoff for this case).
fn concurrent_backoff(attempt: u32) -> Duration {
    Duration::from_millis(1u64 << attempt.saturating_sub(1).min(5)).min(Duration::from_millis(20))
}

impl Transactions {
    /// A connection to the transaction coordinator (FindCoordinator with key type 1).
    async fn coordinator(&self, cluster: &Cluster) -> Result<Arc<Connection>> {
        let mut known = self.coordinator.lock().await;
        if let Some(conn) = known.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let conn = cluster.any_connection().await?;
        let version = conn.version(ApiKey::FindCoordinator)?;
        let key = StrBytes::from_string(self.id.clone());
        let mut request = FindCoordinatorRequest::default();
        if version >= 1 {
            request = request.with_key_type(1);
        }
        request = if version >= 4 {
            request.with_coordinator_keys(vec![key])
        } else {
            request.with_key(key)
        };
        let context = || format!("find the coordinator of transactional id {}", self.id);
        let (code, message, host, port) =
            match conn.send(version, &Request::FindCoordinator(request)).await?.wait().await? {
                Response::FindCoordinator(r) if version >= 4 => {
                    let c =
                        r.coordinators.into_iter().next().ok_or_else(|| ClientError::Protocol {
                            addr: conn.addr().to_string(),
                            reason: "FindCoordinator answered no coordinator".into(),
                        })?;
                    (c.error_code, c.error_message, c.host, c.port)
                }
                Response::FindCoordinator(r) => (r.error_code, r.error_message, r.host, r.port),
                other => return Err(unexpected(conn.addr(), &other)),
            };
        let code = ErrorCode::from_code(code);
        if !code.is_none() {
            return Err(ClientError::kafka(code, message.map(|m| m.to_string()), context()));
        }
        let found = cluster.connection_to(&format!("{}:{}", host.as_str(), port)).await?;
        *known = Some(found.clone());
        Ok(found)
    }

    async fn forget_coordinator(&self) {
        *self.coordinator.lock().await = None;
    }

    /// Sends the request `make` builds (for the version it is given) to the transaction
    /// coordinator until it succeeds, fails for good, or `deadline` passes; `code_of`
    /// picks the answer's error code.
    async fn call(
        &self,
        cluster: &Cluster,
        api: ApiKey,
        max_version: i16,
        deadline: Instant,
        make: impl Fn(i16) -> Request,
        code_of: impl Fn(&Response) -> Option<i16>,
    ) -> Result<Response> {
        let mut attempt = 0u32;
        let start = Instant::now();
        loop {
            attempt += 1;
            let outcome = async {
                let conn = self.coordinator(cluster).await?;
                let version = conn.version(api)?.min(max_version);
                let response = conn.send(version, &make(version)).await?.wait().await?;
                let Some(code) = code_of(&response) else {
                    return Err(unexpected(conn.addr(), &response));
                };
                let code = ErrorCode::from_code(code);
                if code.is_none() {
                    return Ok(response);
                }
                Err(ClientError::kafka(
                    code,
                    None,
                    format!("{api:?} of transactional id {}", self.id),
                ))
            }
            .await;
            let error = match outcome {
                Ok(response) => return Ok(response),
                Err(e) => e,
            };
            let backoff = match error.code().and_then(|c| classify(api, c)) {
                Some(Class::Retry { find_coordinator }) => {
                    if find_coordinator {
                        self.forget_coordinator().await;
                    }
                    if error.code() == Some(ErrorCode::CONCURRENT_TRANSACTIONS) {
                        concurrent_backoff(attempt)
                    } else {
                        cluster.retry_backoff(attempt)
                    }
                }
                Some(_) => return Err(error),
                None if error.is_retriable() => {
                    self.forget_coordinator().await;
                    cluster.retry_backoff(attempt)
                }
                None => return Err(error),
            };
            let wake = Instant::now() + backoff;
            if wake >= deadline {
                return Err(ClientError::MaxBlock {
                    what: format!("{api:?} of transactional id {} (last error: {error})", self.id),
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep_until(wake.into()).await;
        }
    }

    /// InitProducerId for the transactional id: a new epoch that fences every earlier
    /// instance, after the coordinator ended whatever transaction they left open. With
    /// `bump` (v3+), the epoch of `bump`'s producer id is bumped instead (KIP-360).
    ///
    /// # Errors
    /// The coordinator's error (classified by [`classify`]) or [`ClientError::MaxBlock`].
    pub async fn init_producer_id(
        &self,
        cluster: &Cluster,
        deadline: Instant,
        bump: Option<ProducerStamp>,
    ) -> Result<ProducerStamp> {
        let timeout_ms = self.timeout.as_millis().min(i32::MAX as u128) as i32;
        let make = |version: i16| {
            let mut r = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_string(
                    self.id.clone(),
                ))))
                .with_transaction_timeout_ms(timeout_ms);
            if let (Some(stamp), true) = (bump, version >= 3) {
                r = r.with_producer_id(ProducerId(stamp.id)).with_producer_epoch(stamp.epoch);
            }
            Request::InitProducerId(r)
        };
        let code = |r: &Response| match r {
            Response::InitProducerId(r) => Some(r.error_code),
            _ => None,
        };
        match self.call(cluster, ApiKey::InitProducerId, i16::MAX, deadline, make, code).await? {
            Response::InitProducerId(r) => {
                Ok(ProducerStamp { id: r.producer_id.0, epoch: r.producer_epoch })
            }
            _ => unreachable!("invariant: code_of accepted only InitProducerId"),
        }
    }

    /// AddPartitionsToTxn for `partitions` of transaction `generation` (v3 and below:
    /// newer versions are the brokers' batched form). Gives up without sending once the
    /// transaction has ended.
    ///
    /// # Errors
    /// The first partition's error, or the request's.
    pub async fn add_partitions(
        &self,
        cluster: &Cluster,
        generation: u64,
        stamp: ProducerStamp,
        partitions: &[TopicPartition],
        deadline: Instant,
    ) -> Result<()> {
        let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
        for tp in partitions {
            match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
                Some(t) => t.partitions.push(tp.partition),
                None => topics.push(
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(StrBytes::from_string(tp.topic.to_string())))
                        .with_partitions(vec![tp.partition]),
                ),
            }
        }
        let make = |_| {
            Request::AddPartitionsToTxn(
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_string(
                        self.id.clone(),
                    )))
                    .with_v3_and_below_producer_id(ProducerId(stamp.id))
                    .with_v3_and_below_producer_epoch(stamp.epoch)
                    .with_v3_and_below_topics(topics.clone()),
            )
        };
        // The first partition error stands for the request: the others are
        // OPERATION_NOT_ATTEMPTED then.
        let code = |r: &Response| match r {
            Response::AddPartitionsToTxn(r) => Some(
                r.results_by_topic_v3_and_below
                    .iter()
                    .flat_map(|t| t.results_by_partition.iter())
                    .map(|p| p.partition_error_code)
                    .find(|&c| c != 0 && c != ErrorCode::OPERATION_NOT_ATTEMPTED.code())
                    .unwrap_or(r.error_code),
            ),
            _ => None,
        };
        if self.generation() != generation {
            return Err(aborted("the transaction ended before its partitions were added"));
        }
        self.call(cluster, ApiKey::AddPartitionsToTxn, 3, deadline, make, code).await.map(drop)
    }

    /// AddOffsetsToTxn then TxnOffsetCommit at `group`'s coordinator: `offsets` commit
    /// with the transaction.
    ///
    /// # Errors
    /// The coordinators' errors, or [`ClientError::MaxBlock`].
    pub async fn send_offsets(
        &self,
        cluster: &Cluster,
        stamp: ProducerStamp,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
        group: &ConsumerGroupMetadata,
        deadline: Instant,
    ) -> Result<()> {
        let txn_id = || TransactionalId(StrBytes::from_string(self.id.clone()));
        let group_id = || GroupId(StrBytes::from_string(group.group_id.clone()));
        let make = |_| {
            Request::AddOffsetsToTxn(
                AddOffsetsToTxnRequest::default()
                    .with_transactional_id(txn_id())
                    .with_producer_id(ProducerId(stamp.id))
                    .with_producer_epoch(stamp.epoch)
                    .with_group_id(group_id()),
            )
        };
        let code = |r: &Response| match r {
            Response::AddOffsetsToTxn(r) => Some(r.error_code),
            _ => None,
        };
        self.call(cluster, ApiKey::AddOffsetsToTxn, i16::MAX, deadline, make, code).await?;
        self.with(|m| m.started = true);
        let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        for (tp, o) in offsets {
            let p = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(o.offset)
                .with_committed_leader_epoch(o.leader_epoch.unwrap_or(-1))
                .with_committed_metadata(Some(StrBytes::from_string(o.metadata.clone())));
            match topics.iter_mut().find(|t| t.name.0.as_str() == &*tp.topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(tp.topic.to_string())))
                        .with_partitions(vec![p]),
                ),
            }
        }
        let request = TxnOffsetCommitRequest::default()
            .with_transactional_id(txn_id())
            .with_group_id(group_id())
            .with_producer_id(ProducerId(stamp.id))
            .with_producer_epoch(stamp.epoch)
            .with_generation_id(group.generation_id)
            .with_member_id(StrBytes::from_string(group.member_id.clone()))
            .with_group_instance_id(group.group_instance_id.clone().map(StrBytes::from_string))
            .with_topics(topics);
        let mut attempt = 0;
        let start = Instant::now();
        loop {
            attempt += 1;
            let outcome = async {
                let conn = crate::consumer::offsets::coordinator(cluster, &group.group_id).await?;
                let version = conn.version(ApiKey::TxnOffsetCommit)?;
                let request = Request::TxnOffsetCommit(request.clone());
                match conn.send(version, &request).await?.wait().await? {
                    Response::TxnOffsetCommit(r) => {
                        let code = r
                            .topics
                            .iter()
                            .flat_map(|t| t.partitions.iter())
                            .map(|p| p.error_code)
                            .find(|&c| c != 0)
                            .unwrap_or(0);
                        Ok(ErrorCode::from_code(code))
                    }
                    other => Err(unexpected(conn.addr(), &other)),
                }
            }
            .await;
            let error = match outcome {
                Ok(code) if code.is_none() => return Ok(()),
                Ok(code) => ClientError::kafka(
                    code,
                    None,
                    format!(
                        "TxnOffsetCommit of group {} in transaction {}",
                        group.group_id, self.id
                    ),
                ),
                Err(e) => e,
            };
            let retry = match error.code() {
                Some(code) => {
                    matches!(classify(ApiKey::TxnOffsetCommit, code), Some(Class::Retry { .. }))
                }
                None => error.is_retriable(),
            };
            let wake = Instant::now() + cluster.retry_backoff(attempt);
            if !retry {
                return Err(error);
            }
            if wake >= deadline {
                return Err(ClientError::MaxBlock {
                    what: format!("TxnOffsetCommit (last error: {error})"),
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep_until(wake.into()).await;
        }
    }

    /// EndTxn: commit (`commit`) or abort the transaction.
    ///
    /// # Errors
    /// The coordinator's error, or [`ClientError::MaxBlock`].
    pub async fn end(
        &self,
        cluster: &Cluster,
        stamp: ProducerStamp,
        commit: bool,
        deadline: Instant,
    ) -> Result<()> {
        let make = |_| {
            Request::EndTxn(
                EndTxnRequest::default()
                    .with_transactional_id(TransactionalId(StrBytes::from_string(self.id.clone())))
                    .with_producer_id(ProducerId(stamp.id))
                    .with_producer_epoch(stamp.epoch)
                    .with_committed(commit),
            )
        };
        let code = |r: &Response| match r {
            Response::EndTxn(r) => Some(r.error_code),
            _ => None,
        };
        self.call(cluster, ApiKey::EndTxn, i16::MAX, deadline, make, code).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_transactions_are_retried_soon_then_every_20_ms() {
        let waits: Vec<u64> = (1..=7).map(|a| concurrent_backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 20, 20]);
    }
}
