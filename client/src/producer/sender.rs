//! The sender task: drains ready batches from the accumulator into one ProduceRequest
//! per leader, and settles each batch from its partition's answer.
//!
//! It owns the producer identity (InitProducerId, and the epoch bump of KIP-360, done
//! only when nothing is in flight so no batch of the old epoch can arrive after one of the
//! new), the count of requests in flight per broker, and background metadata refreshes.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use sluice_protocol::kafka_protocol::messages::{
    InitProducerIdRequest, ProduceRequest, ProducerId, TopicName,
};
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};
use tokio::task::JoinSet;

use super::accumulator::{Batch, ProducerStamp};
use super::delivery::BatchAck;
use super::idempotence::{verdict, Attempt, Verdict};
use super::transaction::{classify_send, TransactionState, Transactions};
use super::Inner;
use crate::cluster::unexpected;
use crate::config::Acks;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;

/// The longest the sender sleeps with nothing due, so stale metadata is noticed.
const IDLE_WAKE: Duration = Duration::from_millis(250);

type Answer = (i32, Vec<Batch>, Result<Response>);

/// An AddPartitionsToTxn's outcome: its transaction, its partitions, how it went.
type Added = (u64, Vec<TopicPartition>, Result<()>);

struct Sender {
    inner: Arc<Inner>,
    stamp: Option<ProducerStamp>,
    bump_pending: bool,
    init_attempts: u32,
    /// No InitProducerId before this (its backoff).
    init_retry_at: Option<Instant>,
    in_flight: HashMap<i32, usize>,
    requests: JoinSet<Answer>,
    refresh: Option<tokio::task::JoinHandle<()>>,
    want_refresh: bool,
    /// AddPartitionsToTxn in flight: its transaction, its partitions, its outcome.
    adding: Option<tokio::task::JoinHandle<Added>>,
}

/// Runs until the producer is closed and every batch is settled.
pub(super) async fn run(inner: Arc<Inner>) {
    let mut changes = inner.cluster.subscribe_changes();
    let mut s = Sender {
        inner,
        stamp: None,
        bump_pending: false,
        init_attempts: 0,
        init_retry_at: None,
        in_flight: HashMap::new(),
        requests: JoinSet::new(),
        refresh: None,
        want_refresh: false,
        adding: None,
    };
    let txn = s.inner.txn.clone();
    loop {
        if s.inner.abort.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        s.refresh_metadata_if_needed(now);
        let idempotent = s.inner.config.idempotence;
        if let Some(txn) = &txn {
            s.follow_transaction(txn);
        }
        if idempotent
            && txn.is_none()
            && (s.stamp.is_none() || s.bump_pending)
            && s.requests.is_empty()
            && s.init_retry_at.is_none_or(|at| at <= now)
            && s.has_work()
        {
            match s.init_producer_id().await {
                Ok(()) => s.init_retry_at = None,
                Err(e) => {
                    s.init_attempts += 1;
                    if !e.is_retriable() {
                        s.fail_all_queued(&e);
                    }
                    // Not a sleep: batches must still expire while there is no id.
                    s.init_retry_at =
                        Some(Instant::now() + s.inner.cluster.retry_backoff(s.init_attempts));
                }
            }
        }
        let can_drain = match &txn {
            None => !idempotent || (s.stamp.is_some() && !s.bump_pending),
            Some(txn) => {
                s.stamp.is_some()
                    && matches!(
                        txn.state(),
                        TransactionState::InTransaction | TransactionState::Committing
                    )
            }
        };
        let mut next_wakeup = s.drain(Instant::now(), can_drain).await;
        if let Some(at) = s.init_retry_at {
            next_wakeup = Some(next_wakeup.map_or(at, |w| w.min(at)));
        }
        let closing = s.inner.closed.load(Ordering::Acquire);
        if closing && s.requests.is_empty() && !s.has_work() {
            return;
        }
        let sleep = next_wakeup.unwrap_or(now + IDLE_WAKE).min(now + IDLE_WAKE);
        tokio::select! {
            Some(answer) = s.requests.join_next(), if !s.requests.is_empty() => {
                if let Ok(answer) = answer {
                    s.settle(answer);
                }
            }
            added = async { s.adding.as_mut().expect("guarded").await }, if s.adding.is_some() => {
                s.adding = None;
                if let (Ok(added), Some(txn)) = (added, &txn) {
                    s.partitions_added(txn, added);
                }
            }
            _ = s.inner.wake.notified() => {}
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(sleep.into()) => {}
        }
    }
}

impl Sender {
    /// Takes the transaction's producer id and epoch (the API calls get them), and fails
    /// what is queued once the transaction cannot commit.
    fn follow_transaction(&mut self, txn: &Transactions) {
        let stamp = txn.stamp();
        if stamp != self.stamp {
            // A new epoch (init, or the bump after an abort): nothing is in flight then.
            if self.stamp.is_some() {
                self.inner.state.lock().expect("lock").accumulator.reset_sequences();
            }
            self.stamp = stamp;
        }
        if matches!(txn.state(), TransactionState::AbortableError | TransactionState::FatalError)
            && self.has_work()
        {
            let error = txn.with(|m| m.refusal("send"));
            self.fail_all_queued(&error);
        }
    }

    /// Starts AddPartitionsToTxn for `blocked`, unless one is in flight.
    fn add_partitions(&mut self, mut blocked: Vec<TopicPartition>) {
        let Some(txn) = self.inner.txn.clone() else { return };
        let (Some(stamp), true) = (self.stamp, self.adding.is_none()) else { return };
        if !matches!(txn.state(), TransactionState::InTransaction | TransactionState::Committing) {
            return;
        }
        blocked.sort_unstable();
        blocked.dedup();
        let cluster = self.inner.cluster.clone();
        let wake = self.inner.clone();
        let generation = txn.generation();
        let deadline = Instant::now() + self.inner.config.delivery_timeout;
        self.adding = Some(tokio::spawn(async move {
            let outcome = txn.add_partitions(&cluster, generation, stamp, &blocked, deadline).await;
            wake.wake.notify_one();
            (generation, blocked, outcome)
        }));
    }

    fn partitions_added(&mut self, txn: &Transactions, (generation, partitions, outcome): Added) {
        if generation != txn.generation() {
            return;
        }
        match outcome {
            Ok(()) => txn.with(|m| {
                m.partitions.extend(partitions);
                m.started = true;
            }),
            Err(e) => {
                let class = e
                    .code()
                    .and_then(|c| super::transaction::classify(ApiKey::AddPartitionsToTxn, c))
                    .unwrap_or(super::transaction::Class::Abortable);
                let error = txn.fail(class, e);
                self.fail_all_queued(&error);
            }
        }
    }

    fn has_work(&self) -> bool {
        !self.inner.state.lock().expect("lock").accumulator.is_empty()
    }

    fn refresh_metadata_if_needed(&mut self, now: Instant) {
        if self.refresh.as_ref().is_some_and(|r| !r.is_finished()) {
            return;
        }
        if self.want_refresh || self.inner.cluster.metadata_is_stale(now) {
            self.want_refresh = false;
            let cluster = self.inner.cluster.clone();
            self.refresh = Some(tokio::spawn(async move {
                if let Err(e) = cluster.refresh_metadata().await {
                    tracing::debug!(error = %e, "metadata refresh failed");
                }
            }));
        }
    }

    /// Gets a producer id, or bumps the epoch of the one we have (KIP-360; brokers
    /// before InitProducerId v3 hand out a new id instead).
    async fn init_producer_id(&mut self) -> Result<()> {
        let conn = self.inner.cluster.any_connection().await?;
        let version = conn.version(ApiKey::InitProducerId)?;
        let mut request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(i32::MAX);
        if let (Some(stamp), true) = (self.stamp, version >= 3) {
            request =
                request.with_producer_id(ProducerId(stamp.id)).with_producer_epoch(stamp.epoch);
        }
        let response = match conn.call(Request::InitProducerId(request)).await? {
            Response::InitProducerId(r) => r,
            other => return Err(unexpected(conn.addr(), &other)),
        };
        let code = ErrorCode::from_code(response.error_code);
        if !code.is_none() {
            return Err(ClientError::kafka(code, None, "InitProducerId"));
        }
        self.stamp =
            Some(ProducerStamp { id: response.producer_id.0, epoch: response.producer_epoch });
        if self.bump_pending {
            self.inner.state.lock().expect("lock").accumulator.reset_sequences();
            self.bump_pending = false;
        }
        self.init_attempts = 0;
        Ok(())
    }

    fn fail_all_queued(&mut self, error: &ClientError) {
        let released = self.inner.state.lock().expect("lock").accumulator.abort_queued(error);
        self.inner.memory.add_permits(released);
    }

    /// Sends what is ready; returns when to look again.
    async fn drain(&mut self, now: Instant, can_drain: bool) -> Option<Instant> {
        let max_in_flight = self.inner.config.max_in_flight;
        let stamp = if self.inner.config.idempotence { self.stamp } else { None };
        let drained = {
            let cluster = &self.inner.cluster;
            let in_flight = &self.in_flight;
            let leader = |m: &crate::metadata::Metadata, tp: &TopicPartition| {
                m.leader(&tp.topic, tp.partition)
            };
            let can_send =
                |node| can_drain && in_flight.get(&node).copied().unwrap_or(0) < max_in_flight;
            match self.inner.txn.as_deref() {
                None => {
                    let mut state = self.inner.state.lock().expect("lock");
                    cluster.with_metadata(|m| {
                        state.accumulator.drain(now, |tp| leader(m, tp), can_send, stamp)
                    })
                }
                Some(txn) => txn.with(|machine| {
                    let mut state = self.inner.state.lock().expect("lock");
                    cluster.with_metadata(|m| {
                        state.accumulator.drain_where(
                            now,
                            |tp| leader(m, tp),
                            can_send,
                            stamp,
                            |tp| machine.partitions.contains(tp),
                        )
                    })
                }),
            }
        };
        if drained.unknown_leader {
            self.want_refresh = true;
        }
        if !drained.blocked.is_empty() {
            self.add_partitions(drained.blocked);
        }
        for batch in drained.expired {
            let error = self.timeout_error(&batch, batch.last_error.as_ref());
            self.fail(batch, error, false);
        }
        for (node, batches) in drained.by_node {
            self.dispatch(node, batches).await;
        }
        drained.next_wakeup
    }

    /// The error of a batch past `delivery.timeout.ms`, naming what its last attempt met.
    fn timeout_error(&self, batch: &Batch, last: Option<&ClientError>) -> ClientError {
        ClientError::DeliveryTimeout {
            topic: batch.tp.topic.to_string(),
            partition: batch.tp.partition,
            timeout: self.inner.config.delivery_timeout,
            last_error: last.map_or_else(|| "not sent".to_string(), ToString::to_string),
        }
    }

    /// Sends drained batches to `node`. Drained batches count as in flight in the
    /// accumulator from the moment they leave it, so every path here settles them as such.
    async fn dispatch(&mut self, node: i32, batches: Vec<Batch>) {
        let conn = match self.inner.cluster.connection(node).await {
            Ok(conn) => conn,
            Err(e) => {
                for batch in batches {
                    self.retry_or_fail(batch, None, e.clone(), true);
                }
                return;
            }
        };
        let version = match conn.version(ApiKey::Produce) {
            Ok(v) => v,
            Err(e) => {
                for batch in batches {
                    self.fail(batch, e.clone(), true);
                }
                return;
            }
        };
        let request = Request::Produce(produce_request(
            &batches,
            self.inner.config.acks,
            self.inner.config.common.request_timeout,
            self.inner.config.transactional_id.as_deref(),
        ));
        let sent = || {
            let metrics = &self.inner.metrics;
            let mut records = 0;
            for batch in &batches {
                metrics.batch_bytes.record(batch.bytes.len() as u64);
                records += u64::from(batch.records);
            }
            metrics.request_records.record(records);
        };
        if self.inner.config.acks == Acks::None {
            let result = conn.send_without_reply(version, &request).await;
            if result.is_ok() {
                sent();
            }
            let sent = result;
            for batch in batches {
                match &sent {
                    Ok(()) => {
                        self.inflight_done(batch, BatchAck { base_offset: -1, log_append_time: -1 })
                    }
                    Err(e) => self.retry_or_fail(batch, None, e.clone(), true),
                }
            }
            return;
        }
        match conn.send(version, &request).await {
            Ok(pending) => {
                sent();
                *self.in_flight.entry(node).or_default() += 1;
                self.requests.spawn(async move { (node, batches, pending.wait().await) });
            }
            Err(e) => {
                for batch in batches {
                    self.retry_or_fail(batch, None, e.clone(), true);
                }
            }
        }
    }

    fn settle(&mut self, (node, batches, result): Answer) {
        if let Some(n) = self.in_flight.get_mut(&node) {
            *n = n.saturating_sub(1);
        }
        let response = match result {
            Ok(Response::Produce(r)) => r,
            Ok(other) => {
                let e = unexpected(&format!("node {node}"), &other);
                for batch in batches {
                    self.retry_or_fail(batch, None, e.clone(), true);
                }
                return;
            }
            Err(e) => {
                self.inner.cluster.invalidate_metadata();
                for batch in batches {
                    self.retry_or_fail(batch, None, e.clone(), true);
                }
                return;
            }
        };
        let mut answers = HashMap::new();
        for topic in &response.responses {
            for p in &topic.partition_responses {
                let answer =
                    (p.error_code, p.base_offset, p.log_append_time_ms, p.error_message.clone());
                answers.insert((topic.name.0.to_string(), p.index), answer);
            }
        }
        for batch in batches {
            let Some((error_code, base_offset, log_append_time, message)) =
                answers.remove(&(batch.tp.topic.to_string(), batch.tp.partition))
            else {
                let e = ClientError::Protocol {
                    addr: format!("node {node}"),
                    reason: format!(
                        "produce response without {}-{}",
                        batch.tp.topic, batch.tp.partition
                    ),
                };
                self.retry_or_fail(batch, None, e, true);
                continue;
            };
            let code = ErrorCode::from_code(error_code);
            if code.is_none() || code == ErrorCode::DUPLICATE_SEQUENCE_NUMBER {
                let base_offset = if code.is_none() { base_offset } else { -1 };
                self.inflight_done(batch, BatchAck { base_offset, log_append_time });
                continue;
            }
            let message = message.map(|m| m.to_string());
            let context = format!("produce to {}-{}", batch.tp.topic, batch.tp.partition);
            self.retry_or_fail(batch, Some(code), ClientError::kafka(code, message, context), true);
        }
    }

    fn inflight_done(&mut self, batch: Batch, ack: BatchAck) {
        let released =
            self.inner.state.lock().expect("lock").accumulator.complete(batch, Ok(ack), true);
        self.inner.memory.add_permits(released);
    }

    fn fail(&mut self, batch: Batch, error: ClientError, was_in_flight: bool) {
        self.inner.metrics.records_failed.fetch_add(u64::from(batch.records), Ordering::Relaxed);
        if let Some(txn) = &self.inner.txn {
            // A record of the transaction is lost: it must not commit.
            txn.fail(classify_send(&error), error.clone());
        }
        let released = self.inner.state.lock().expect("lock").accumulator.complete(
            batch,
            Err(error),
            was_in_flight,
        );
        self.inner.memory.add_permits(released);
    }

    /// Decides a failed attempt: `code` is the partition's error, `None` when the outcome
    /// is unknown (connection lost, timeout, no connection).
    fn retry_or_fail(
        &mut self,
        batch: Batch,
        code: Option<ErrorCode>,
        error: ClientError,
        was_in_flight: bool,
    ) {
        let config = &self.inner.config;
        let sequenced = batch.sequence.is_some_and(|(_, s)| Some(s) == self.stamp);
        let earlier_retry_pending = {
            let state = self.inner.state.lock().expect("lock");
            state.accumulator.has_retry_before(&batch.tp, batch.id)
        };
        let sent = was_in_flight || batch.attempts > 0;
        let attempt = Attempt {
            idempotent: config.idempotence,
            sequenced: sequenced && sent,
            attempts: batch.attempts,
            retries: config.retries,
            earlier_retry_pending,
        };
        let now = Instant::now();
        let expired = batch.created + config.delivery_timeout <= now;
        let transactional = self.inner.txn.is_some();
        let verdict = match verdict(code, attempt) {
            Verdict::Retry { .. } | Verdict::BumpAndRetry if expired => {
                Verdict::Fail { bump: attempt.sequenced }
            }
            // Only the coordinator bumps a transactional producer's epoch, when the
            // transaction is aborted.
            Verdict::BumpAndRetry if transactional => Verdict::Fail { bump: true },
            v => v,
        };
        match verdict {
            Verdict::Done => unreachable!("invariant: settle handles successful answers"),
            Verdict::Retry { refresh_metadata } => {
                if refresh_metadata || error.needs_metadata_refresh() {
                    self.inner.cluster.invalidate_metadata();
                    self.want_refresh = true;
                }
                let retry_at = now + self.inner.cluster.retry_backoff(batch.attempts.max(1));
                self.requeue(batch, retry_at, error, was_in_flight);
            }
            Verdict::BumpAndRetry => {
                self.bump_pending = true;
                self.requeue(batch, now, error, was_in_flight);
            }
            Verdict::Fail { bump } => {
                match &self.inner.txn {
                    Some(txn) if bump => txn.with(|m| m.epoch_bump_required = true),
                    None if bump => self.bump_pending = true,
                    _ => {}
                }
                let error = if expired { self.timeout_error(&batch, Some(&error)) } else { error };
                self.fail(batch, error, was_in_flight);
            }
        }
    }

    fn requeue(
        &mut self,
        batch: Batch,
        retry_at: Instant,
        error: ClientError,
        was_in_flight: bool,
    ) {
        self.inner.metrics.records_retried.fetch_add(u64::from(batch.records), Ordering::Relaxed);
        let mut state = self.inner.state.lock().expect("lock");
        state.accumulator.requeue(batch, retry_at, error, was_in_flight);
    }
}

fn produce_request(
    batches: &[Batch],
    acks: Acks,
    timeout: Duration,
    transactional_id: Option<&str>,
) -> ProduceRequest {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for batch in batches {
        let partition = PartitionProduceData::default()
            .with_index(batch.tp.partition)
            .with_records(Some(batch.bytes.clone()));
        match topics.iter_mut().find(|t| t.name.0.as_str() == &*batch.tp.topic) {
            Some(t) => t.partition_data.push(partition),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(batch.tp.topic.to_string())))
                    .with_partition_data(vec![partition]),
            ),
        }
    }
    ProduceRequest::default()
        .with_transactional_id(transactional_id.map(|id| {
            sluice_protocol::kafka_protocol::messages::TransactionalId(StrBytes::from_string(
                id.to_string(),
            ))
        }))
        .with_acks(acks.wire())
        .with_timeout_ms(timeout.as_millis().min(i32::MAX as u128) as i32)
        .with_topic_data(topics)
}
