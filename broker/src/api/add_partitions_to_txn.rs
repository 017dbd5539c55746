//! AddPartitionsToTxn: partitions join the producer's transaction (Kafka's
//! `handleAddPartitionsToTransaction`).
//!
//! - v0–3 (clients): one transaction. A partition that does not exist is answered
//!   UNKNOWN_TOPIC_OR_PARTITION and the others OPERATION_NOT_ATTEMPTED, with nothing
//!   added; otherwise one error for every partition: INVALID_PRODUCER_ID_MAPPING,
//!   PRODUCER_FENCED (INVALID_PRODUCER_EPOCH below v2, KIP-588), CONCURRENT_TRANSACTIONS
//!   while the previous transaction completes, or NONE.
//! - v4 (brokers, KIP-890): several transactions, each answered on its own; a
//!   `verify_only` one changes nothing and answers per partition whether it is in the
//!   ongoing transaction (INVALID_TXN_STATE if not). A transactional id named twice in
//!   one request is answered INVALID_REQUEST for its later entries.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TopicName, TransactionalId,
};
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::group::types::TopicPartition;

/// Answers an AddPartitionsToTxn request.
pub async fn handle(
    broker: &Broker,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let mut response = AddPartitionsToTxnResponse::default();
    if version <= 3 {
        let t = Txn {
            txn_id: request.v3_and_below_transactional_id.0.to_string(),
            producer_id: request.v3_and_below_producer_id.0,
            epoch: request.v3_and_below_producer_epoch,
            verify_only: false,
        };
        let answered = one(broker, t, request.v3_and_below_topics, version).await;
        response.results_by_topic_v3_and_below = answered;
        return response;
    }
    let mut seen = HashSet::new();
    for t in request.transactions {
        let txn_id = t.transactional_id.clone();
        let topic_results = if seen.insert(txn_id.0.clone()) {
            let txn = Txn {
                txn_id: txn_id.0.to_string(),
                producer_id: t.producer_id.0,
                epoch: t.producer_epoch,
                verify_only: t.verify_only,
            };
            one(broker, txn, t.topics, version).await
        } else {
            let mut answers = Answers::new(&t.topics);
            answers.all(ErrorCode::INVALID_REQUEST);
            answers.results
        };
        let mut r = AddPartitionsToTxnResult::default();
        r.transactional_id = TransactionalId(txn_id.0);
        r.topic_results = topic_results;
        response.results_by_transaction.push(r);
    }
    response
}

struct Txn {
    txn_id: String,
    producer_id: i64,
    epoch: i16,
    verify_only: bool,
}

/// The answer's shape: one result per partition of the request, each partition once.
struct Answers {
    results: Vec<AddPartitionsToTxnTopicResult>,
}

impl Answers {
    fn new(topics: &[AddPartitionsToTxnTopic]) -> Answers {
        let mut seen = HashSet::new();
        let results = topics
            .iter()
            .map(|t| {
                let mut r = AddPartitionsToTxnTopicResult::default();
                r.name = TopicName(t.name.0.clone());
                r.results_by_partition = t
                    .partitions
                    .iter()
                    .filter(|&&p| seen.insert((t.name.0.clone(), p)))
                    .map(|&p| {
                        let mut pr = AddPartitionsToTxnPartitionResult::default();
                        pr.partition_index = p;
                        pr
                    })
                    .collect();
                r
            })
            .collect();
        Answers { results }
    }

    fn all(&mut self, e: ErrorCode) {
        for p in self.results.iter_mut().flat_map(|t| t.results_by_partition.iter_mut()) {
            p.partition_error_code = e.code();
        }
    }
}

async fn one(
    broker: &Broker,
    t: Txn,
    topics: Vec<AddPartitionsToTxnTopic>,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut answers = Answers::new(&topics);
    if t.txn_id.is_empty() {
        answers.all(ErrorCode::INVALID_REQUEST);
        return answers.results;
    }
    let mut partitions = Vec::new();
    let mut unknown = false;
    for r in &mut answers.results {
        let name: Arc<str> = Arc::from(r.name.0.as_str());
        let topic = broker.topics.get(&name);
        for p in &mut r.results_by_partition {
            if topic.as_ref().and_then(|t| t.partition(p.partition_index)).is_none() {
                p.partition_error_code = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
                unknown = true;
            } else {
                partitions.push(TopicPartition {
                    topic: Arc::clone(&name),
                    partition: p.partition_index,
                });
            }
        }
    }
    if unknown {
        for p in answers.results.iter_mut().flat_map(|t| t.results_by_partition.iter_mut()) {
            if p.partition_error_code == 0 {
                p.partition_error_code = ErrorCode::OPERATION_NOT_ATTEMPTED.code();
            }
        }
        return answers.results;
    }
    let txns = &broker.txns;
    if t.verify_only {
        let errors = txns
            .verify_partitions(t.txn_id, t.producer_id, t.epoch, partitions)
            .await
            .map_err(|e| e.error_code());
        let mut errors = errors.map(Vec::into_iter);
        for p in answers.results.iter_mut().flat_map(|t| t.results_by_partition.iter_mut()) {
            let e = match &mut errors {
                Ok(each) => each.next().unwrap_or(ErrorCode::UNKNOWN_SERVER_ERROR),
                Err(e) => *e,
            };
            p.partition_error_code = e.code();
        }
        return answers.results;
    }
    let e = txns
        .add_partitions(t.txn_id, t.producer_id, t.epoch, partitions)
        .await
        .unwrap_or_else(|e| e.error_code());
    let e = if version < 2 && e == ErrorCode::PRODUCER_FENCED {
        ErrorCode::INVALID_PRODUCER_EPOCH
    } else {
        e
    };
    answers.all(e);
    answers.results
}
