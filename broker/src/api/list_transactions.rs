//! ListTransactions (KIP-664): the transactional ids this coordinator knows, filtered by
//! state names (an unknown name is echoed in `unknown_state_filters`), producer ids and
//! (v1, KIP-994) a minimum running time.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::txn::request::ListFilter;
use crate::txn::TxnList;

/// Answers a ListTransactions request.
pub async fn handle(
    broker: &Broker,
    request: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let filter = ListFilter {
        states: request.state_filters.iter().map(|s| s.to_string()).collect(),
        producer_ids: request.producer_id_filters.iter().map(|p| p.0).collect(),
        duration_ms: if version >= 1 { request.duration_filter } else { -1 },
    };
    let mut response = ListTransactionsResponse::default();
    let list = match broker.txns.list(filter).await {
        Ok(list) => list,
        Err(e) => TxnList { error: e.error_code(), unknown_states: vec![], transactions: vec![] },
    };
    response.error_code = list.error.code();
    response.unknown_state_filters = list.unknown_states.into_iter().map(StrBytes::from).collect();
    response.transaction_states = list
        .transactions
        .into_iter()
        .map(|t| {
            let mut s = TransactionState::default();
            s.transactional_id = TransactionalId(StrBytes::from(t.txn_id));
            s.producer_id = ProducerId(t.producer_id);
            s.transaction_state = StrBytes::from_static_str(t.state.name());
            s
        })
        .collect();
    response
}
