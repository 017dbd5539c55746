//! DescribeCluster (KIP-700): the cluster id, the controller and the brokers.
//!
//! A single node is its own controller and the only broker, at its advertised address.
//! v1 lets a client ask for controller endpoints instead (KIP-919, endpoint type 2):
//! this is a broker endpoint, so that is UNSUPPORTED_ENDPOINT_TYPE, as Kafka's brokers
//! answer. With no authorizer every cluster operation is allowed, so when a client asks
//! for its authorized operations it gets all those Kafka defines for the cluster resource.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;

/// Endpoint type of brokers (v1).
const BROKERS: i8 = 1;

/// Kafka's AclOperation codes that apply to the cluster resource: CREATE, ALTER,
/// DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
const CLUSTER_OPERATIONS: [u8; 7] = [5, 7, 8, 9, 10, 11, 12];

/// Answers DescribeCluster. Runs on a blocking thread like the other admin handlers,
/// though it touches nothing but the config.
pub fn handle(
    broker: &Broker,
    request: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    // v0 has no endpoint type in the request; kafka-protocol's default there is brokers.
    if version >= 1 && request.endpoint_type != BROKERS {
        response.error_code = ErrorCode::UNSUPPORTED_ENDPOINT_TYPE.code();
        response.error_message = Some(StrBytes::from_string(format!(
            "endpoint type {} was requested, but this is a broker endpoint",
            request.endpoint_type
        )));
        return response;
    }
    let node = BrokerId(broker.config.node_id);
    response.cluster_id = StrBytes::from_string(broker.cluster_id.clone());
    response.controller_id = node;
    let mut b = DescribeClusterBroker::default();
    b.broker_id = node;
    b.host = StrBytes::from_string(broker.config.advertised_host.clone());
    b.port = i32::from(broker.config.advertised_port);
    response.brokers = vec![b];
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations =
            CLUSTER_OPERATIONS.iter().fold(0, |bits, op| bits | 1 << op);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::BytesMut;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use super::*;
    use crate::config::Config;

    fn broker() -> (tempfile::TempDir, Arc<Broker>) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            node_id: 3,
            advertised_host: "kafka.example".into(),
            advertised_port: 19092,
            ..Config::default()
        };
        (dir, Broker::open(config).unwrap().0)
    }

    #[test]
    fn the_one_broker_is_the_controller() {
        let (_dir, broker) = broker();
        let mut request = DescribeClusterRequest::default();
        request.include_cluster_authorized_operations = true;
        let r = handle(&broker, request, 1);
        assert_eq!(r.error_code, 0);
        assert_eq!(r.cluster_id.as_str(), broker.cluster_id);
        assert_eq!(r.controller_id, BrokerId(3));
        assert_eq!(r.brokers.len(), 1);
        assert_eq!(r.brokers[0].broker_id, BrokerId(3));
        assert_eq!((r.brokers[0].host.as_str(), r.brokers[0].port), ("kafka.example", 19092));
        assert_eq!(r.endpoint_type, BROKERS);
        assert_ne!(r.cluster_authorized_operations & (1 << 8), 0, "describe is allowed");
        let r = handle(&broker, DescribeClusterRequest::default(), 1);
        assert_eq!(r.cluster_authorized_operations, i32::MIN, "not asked for");
    }

    #[test]
    fn controller_endpoints_are_not_served_here() {
        let (_dir, broker) = broker();
        let mut request = DescribeClusterRequest::default();
        request.endpoint_type = 2;
        let r = handle(&broker, request, 1);
        assert_eq!(r.error_code, ErrorCode::UNSUPPORTED_ENDPOINT_TYPE.code());
        assert!(r.brokers.is_empty());
    }

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let (_dir, broker) = broker();
        let s = support(ApiKey::DescribeCluster).unwrap();
        for version in s.advertised.min..=s.advertised.max {
            let mut request = DescribeClusterRequest::default();
            request.include_cluster_authorized_operations = true;
            let response = Response::DescribeCluster(handle(&broker, request, version));
            response.encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
