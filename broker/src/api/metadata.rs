//! Metadata: the broker itself as the only node, and topics with their partitions, each
//! led by this node with leader epoch 0. Creates requested topics when auto-creation is
//! on and the client allows it (v4+; older versions always allow it), at most
//! `MAX_PARTITIONS_PER_REQUEST` partitions per request, with one catalog write.
//!
//! Fields a version does not have stay at kafka-protocol's defaults: its encoder refuses
//! a non-default value in a version without the field.

use std::collections::{BTreeMap, HashMap, HashSet};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::error::topic_error_code;
use crate::topics::{
    is_internal, refuse_if_internal, NewTopic, ProtectedOperation, Topic, TopicError,
    MAX_PARTITIONS_PER_REQUEST,
};

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
        Some(topics) => named_topics(broker, topics, allow_create, version),
    };
    response
}

/// The topics a request names, each once (as Kafka, which reads the list as a set: a
/// request naming a large topic a million times gets it once), in the order first named.
/// Missing ones are created when allowed, all in one batch of at most
/// [`MAX_PARTITIONS_PER_REQUEST`] partitions, the bound CreateTopics has; those past it
/// get UNKNOWN_TOPIC_OR_PARTITION, which clients retry, and are created then.
fn named_topics(
    broker: &Broker,
    topics: Vec<MetadataRequestTopic>,
    allow_create: bool,
    version: i16,
) -> Vec<MetadataResponseTopic> {
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    let topics: Vec<MetadataRequestTopic> = topics
        .into_iter()
        .filter(|t| match &t.name {
            Some(name) => names.insert(name.0.clone()),
            None => ids.insert(t.topic_id),
        })
        .collect();
    let mut created = HashMap::new();
    if allow_create && broker.config.auto_create_topics {
        let per_topic = i64::from(broker.config.num_partitions);
        let mut budget = MAX_PARTITIONS_PER_REQUEST;
        let mut wanted = Vec::new();
        for name in topics.iter().filter_map(|t| t.name.as_ref()) {
            let name = name.0.as_str();
            // The broker creates its internal topics itself, with their own configs.
            let internal = refuse_if_internal(name, ProtectedOperation::Create).is_err();
            if internal || budget < per_topic || broker.topics.get(name).is_some() {
                continue;
            }
            budget -= per_topic;
            wanted.push(NewTopic {
                name: name.to_owned(),
                partitions: broker.config.num_partitions,
                replication_factor: -1,
                overrides: BTreeMap::new(),
            });
        }
        if !wanted.is_empty() {
            let names: Vec<String> = wanted.iter().map(|t| t.name.clone()).collect();
            created = names.into_iter().zip(broker.topics.create_all(wanted, false)).collect();
        }
    }
    topics
        .into_iter()
        .map(|t| match t.name {
            Some(name) => {
                let name = name.0.to_string();
                match created.remove(&name) {
                    Some(Ok(topic)) => describe(broker, &topic, version),
                    // Created by another request meanwhile.
                    Some(Err(TopicError::AlreadyExists(_))) | None => {
                        match broker.topics.get(&name) {
                            Some(topic) => describe(broker, &topic, version),
                            None => error_topic(Some(&name), ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
                        }
                    }
                    Some(Err(e)) => error_topic(Some(&name), topic_error_code(&e)),
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
        .collect()
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
        t.is_internal = is_internal(&topic.name);
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
