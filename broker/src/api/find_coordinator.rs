//! FindCoordinator: this node coordinates every group and every transactional id (key
//! types 0 and 1; [`crate::group`], [`crate::txn`]). v4+ asks for several keys at once
//! (KIP-699). A key named twice is answered once.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::api::first_occurrences;
use crate::broker::Broker;
use crate::error::Refusal;

/// Key type of a consumer group.
const GROUP: i8 = 0;
/// Key type of a transactional id.
const TRANSACTION: i8 = 1;

/// Answers a FindCoordinator request.
pub fn handle(
    broker: &Broker,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let refusal = match request.key_type {
        GROUP | TRANSACTION => None,
        _ => Some(Refusal::new(ErrorCode::INVALID_REQUEST, "unknown coordinator key type")),
    };
    let node = BrokerId(broker.config.node_id);
    let host = StrBytes::from(broker.config.advertised_host.clone());
    let port = i32::from(broker.config.advertised_port);
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        // Each key once, where it first appears: the answer to a repeat is the same. A
        // refusal's message is one StrBytes all keys share, not a copy per key.
        let message = refusal.as_ref().and_then(|r| r.message.clone()).map(StrBytes::from_string);
        let first = first_occurrences(&request.coordinator_keys);
        response.coordinators = request
            .coordinator_keys
            .into_iter()
            .zip(first)
            .filter_map(|(key, first)| first.then_some(key))
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key;
                match &refusal {
                    None => (c.node_id, c.host, c.port) = (node, host.clone(), port),
                    Some(refusal) => {
                        c.error_code = refusal.code.code();
                        c.error_message = message.clone();
                        (c.node_id, c.port) = (BrokerId(-1), -1);
                    }
                }
                c
            })
            .collect();
        return response;
    }
    match refusal {
        None => (response.node_id, response.host, response.port) = (node, host, port),
        Some(refusal) => {
            response.error_code = refusal.code.code();
            if version >= 1 {
                response.error_message = refusal.message.map(StrBytes::from_string);
            }
            (response.node_id, response.port) = (BrokerId(-1), -1);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use super::*;

    fn broker() -> (tempfile::TempDir, std::sync::Arc<Broker>) {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config {
            data_dir: dir.path().to_owned(),
            node_id: 7,
            ..Default::default()
        };
        (dir, Broker::open(config).unwrap().0)
    }

    #[test]
    fn this_node_coordinates_groups_and_transactions_at_every_version() {
        let (_dir, broker) = broker();
        let range = support(ApiKey::FindCoordinator).unwrap().advertised;
        for version in range.min..=range.max {
            for key_type in [GROUP, TRANSACTION] {
                let mut request = FindCoordinatorRequest::default();
                if version >= 4 {
                    request.coordinator_keys = vec!["a".into(), "b".into()];
                } else {
                    request.key = "a".into();
                }
                if version >= 1 {
                    request.key_type = key_type;
                }
                let r = handle(&broker, request, version);
                let (node, error) = match r.coordinators.first() {
                    Some(c) => {
                        assert_eq!(r.coordinators.len(), 2);
                        (c.node_id, c.error_code)
                    }
                    None => (r.node_id, r.error_code),
                };
                assert_eq!((node, error), (BrokerId(7), 0), "v{version} key type {key_type}");
                Response::FindCoordinator(r).encode(version, &mut BytesMut::new()).unwrap();
            }
        }
    }

    #[test]
    fn an_unknown_key_type_is_refused_with_a_message_from_v1() {
        let (_dir, broker) = broker();
        let range = support(ApiKey::FindCoordinator).unwrap().advertised;
        let invalid = ErrorCode::INVALID_REQUEST.code();
        let message = Some(StrBytes::from_static_str("unknown coordinator key type"));
        for version in range.min.max(1)..=range.max {
            let mut request = FindCoordinatorRequest::default();
            request.key_type = 5;
            if version >= 4 {
                request.coordinator_keys = vec!["a".into(), "b".into()];
            } else {
                request.key = "a".into();
            }
            let r = handle(&broker, request, version);
            if version >= 4 {
                assert_eq!(r.coordinators.len(), 2);
                for c in &r.coordinators {
                    assert_eq!((c.error_code, &c.error_message), (invalid, &message));
                    assert_eq!((c.node_id, c.port), (BrokerId(-1), -1));
                }
            } else {
                assert_eq!((r.error_code, &r.error_message), (invalid, &message), "v{version}");
                assert_eq!((r.node_id, r.port), (BrokerId(-1), -1));
            }
            Response::FindCoordinator(r).encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
