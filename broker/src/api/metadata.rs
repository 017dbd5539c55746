//! Metadata: the broker itself as the only node, and topics with their partitions, each
//! led by this node with leader epoch 0. Creates requested topics when auto-creation is
//! on and the client allows it (v4+; older versions always allow it).
//!
//! Fields a version does not have stay at kafka-protocol's defaults: its encoder refuses
//! a non-default value in a version without the field.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::error::topic_error_code;
use crate::topics::Topic;

/// Answers a Metadata request. Runs on a blocking thread: it may create topics.
pub fn handle(broker: &Broker, request: MetadataRequest, version: i16) -> MetadataResponse {
    let node = BrokerId(broker.config.node_id);
    let mut response = MetadataResponse::default();
    let mut b = MetadataResponseBroker::default();
    b.node_id = node;
    b.host = StrBytes::from_string(broker.config.advertised_host.clone());
    b.port = i32::from(broker.config.advertised_port);
    response.brokers = vec![b];
    if version >= 1 {
        response.controller_id = node;
    }
    if version >= 2 {
        response.cluster_id = Some(StrBytes::from_string(broker.cluster_id.clone()));
    }
    let allow_create = version < 4 || request.allow_auto_topic_creation;
    let wanted = match request.topics {
        // v0: an empty list means every topic; v1+: null means every topic.
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    response.topics = match wanted {
        None => broker.topics.list().iter().map(|t| describe(broker, t, version)).collect(),
        Some(topics) => topics
            .into_iter()
            .map(|t| match t.name {
                Some(name) => {
                    let name = name.0.to_string();
                    match broker.topic_or_create(&name, allow_create) {
                        Ok(Some(topic)) => describe(broker, &topic, version),
                        Ok(None) => error_topic(Some(&name), ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                        Err(e) => error_topic(Some(&name), topic_error_code(&e)),
                    }
                }
                None => match broker.topics.get_by_id(t.topic_id) {
                    Some(topic) => describe(broker, &topic, version),
                    None => {
                        let mut e = error_topic(None, ErrorCode::UNKNOWN_TOPIC_ID);
                        e.topic_id = t.topic_id;
                        e
                    }
                },
            })
            .collect(),
    };
    response
}

fn error_topic(name: Option<&str>, code: ErrorCode) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.error_code = code.code();
    t.name = name.map(|n| TopicName(StrBytes::from_string(n.to_owned())));
    t
}

fn describe(broker: &Broker, topic: &Topic, version: i16) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let mut t = MetadataResponseTopic::default();
    t.name = Some(TopicName(StrBytes::from_string(topic.name.clone())));
    if version >= 10 {
        t.topic_id = topic.id;
    }
    if version >= 1 {
        t.is_internal = crate::topics::is_internal(&topic.name);
    }
    t.partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let mut mp = MetadataResponsePartition::default();
            mp.partition_index = p.index();
            mp.leader_id = node;
            if version >= 7 {
                mp.leader_epoch = 0;
            }
            mp.replica_nodes = vec![node];
            mp.isr_nodes = vec![node];
            mp
        })
        .collect();
    t
}
