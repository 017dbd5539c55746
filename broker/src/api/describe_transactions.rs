//! DescribeTransactions (KIP-664): each transactional id's state, producer, timeout,
//! start and partitions; TRANSACTIONAL_ID_NOT_FOUND for an id the coordinator does not
//! know. An id named twice is answered once.

use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::api::first_occurrences;
use crate::broker::Broker;

/// Answers a DescribeTransactions request.
pub async fn handle(
    broker: &Broker,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let first = first_occurrences(&request.transactional_ids);
    let ids: Vec<String> = request
        .transactional_ids
        .into_iter()
        .zip(first)
        .filter_map(|(id, first)| first.then(|| id.0.to_string()))
        .collect();
    let described = match broker.txns.describe(ids.clone()).await {
        Ok(d) => d,
        Err(e) => {
            let code = e.error_code();
            let mut response = DescribeTransactionsResponse::default();
            response.transaction_states = ids
                .into_iter()
                .map(|id| {
                    let mut s = TransactionState::default();
                    s.transactional_id = TransactionalId(StrBytes::from(id));
                    s.error_code = code.code();
                    s
                })
                .collect();
            return response;
        }
    };
    let mut response = DescribeTransactionsResponse::default();
    for d in described {
        let mut s = TransactionState::default();
        s.transactional_id = TransactionalId(StrBytes::from(d.txn_id));
        s.error_code = d.error.code();
        if d.error.code() == 0 {
            s.transaction_state = StrBytes::from_static_str(d.state.name());
            s.transaction_timeout_ms = d.timeout_ms;
            s.transaction_start_time_ms = d.start_ms;
            s.producer_id = ProducerId(d.producer_id);
            s.producer_epoch = d.producer_epoch;
            let mut last: Option<Arc<str>> = None;
            for tp in d.partitions {
                if last.as_deref() != Some(&*tp.topic) {
                    let mut t = TopicData::default();
                    t.topic = TopicName(StrBytes::from(tp.topic.to_string()));
                    s.topics.push(t);
                    last = Some(Arc::clone(&tp.topic));
                }
                s.topics.last_mut().expect("invariant: pushed above").partitions.push(tp.partition);
            }
        }
        response.transaction_states.push(s);
    }
    response
}
