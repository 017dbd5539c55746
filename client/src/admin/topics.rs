//! Topics: create, delete, list, describe, and add partitions.
//!
//! CreateTopics, DeleteTopics and CreatePartitions go to the controller and answer per
//! topic; a topic answered NOT_CONTROLLER is sent again, to the controller fresh metadata
//! names. Listing and describing read one Metadata response from any broker, which never
//! creates a topic.

use std::collections::HashMap;

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use sluice_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig,
};
use sluice_protocol::kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use sluice_protocol::kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use sluice_protocol::kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, TopicName,
};
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};
use uuid::Uuid;

use super::routing::{controller_moved, transient, Route};
use super::Admin;
use crate::cluster::{missing, unexpected};
use crate::error::{check, ClientError, Result};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Its name.
    pub name: String,
    /// Its partition count; `None` (sent as -1) for the broker's `num.partitions`.
    pub partitions: Option<i32>,
    /// Its replication factor; `None` (sent as -1) for the broker's default.
    pub replication_factor: Option<i16>,
    /// Topic config overrides, `(name, value)`.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with the broker's default partitions and replication factor.
    pub fn new(name: impl Into<String>) -> Self {
        NewTopic { name: name.into(), partitions: None, replication_factor: None, configs: vec![] }
    }

    /// Sets the partition count.
    pub fn partitions(mut self, partitions: i32) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// Sets the replication factor.
    pub fn replication_factor(mut self, replication_factor: i16) -> Self {
        self.replication_factor = Some(replication_factor);
        self
    }

    /// Adds a config override.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((name.into(), value.into()));
        self
    }
}

/// A topic as [`Admin::list_topics`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    /// Its name.
    pub name: String,
    /// Its id (nil from brokers before Metadata v10).
    pub id: Uuid,
    /// Whether the broker marks it internal (`__consumer_offsets`).
    pub internal: bool,
    /// How many partitions it has.
    pub partitions: usize,
}

/// A topic as [`Admin::describe_topics`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Its name.
    pub name: String,
    /// Its id (nil from brokers before Metadata v10).
    pub id: Uuid,
    /// Whether the broker marks it internal.
    pub internal: bool,
    /// Its partitions, by index.
    pub partitions: Vec<PartitionDescription>,
}

/// One partition of a [`TopicDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// The partition index.
    pub partition: i32,
    /// The leader's node id, if it has one.
    pub leader: Option<i32>,
    /// The leader epoch, if the broker reports it (Metadata v7+).
    pub leader_epoch: Option<i32>,
    /// The replicas' node ids.
    pub replicas: Vec<i32>,
    /// The in-sync replicas' node ids.
    pub isr: Vec<i32>,
}

impl Admin {
    /// Creates topics, or with `validate_only` checks that they could be created. Returns
    /// each distinct name once, in the order first given, with its outcome; a name given
    /// twice is created from its first entry.
    ///
    /// # Errors
    /// Per topic, [`ClientError::Kafka`] with the broker's code (TOPIC_ALREADY_EXISTS,
    /// INVALID_CONFIG, ...), or [`ClientError::UnsupportedVersion`] when a broker default
    /// is asked of one before CreateTopics v4. The call fails as a whole only when no
    /// controller could be reached.
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<()>)>> {
        let mut by_name: HashMap<&str, &NewTopic> = HashMap::new();
        for t in topics {
            by_name.entry(&t.name).or_insert(t);
        }
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        let by_name = &by_name;
        self.settle(&names, controller_moved, move |open: Vec<String>| async move {
            let conn = self.connect(&Route::Controller).await?;
            let version = conn.version(ApiKey::CreateTopics)?;
            // -1 for "the broker's default" arrived with v4 (KIP-464).
            let unsupported = |t: &NewTopic| {
                version < 4 && (t.partitions.is_none() || t.replication_factor.is_none())
            };
            let sent: Vec<CreatableTopic> = open
                .iter()
                .map(|n| by_name[n.as_str()])
                .filter(|t| !unsupported(t))
                .map(creatable)
                .collect();
            let mut results = HashMap::new();
            if !sent.is_empty() {
                let request = CreateTopicsRequest::default()
                    .with_topics(sent)
                    .with_timeout_ms(self.timeout_ms())
                    .with_validate_only(validate_only);
                let r = match conn
                    .send(version, &Request::CreateTopics(request))
                    .await?
                    .wait()
                    .await?
                {
                    Response::CreateTopics(r) => r,
                    other => return Err(unexpected(conn.addr(), &other)),
                };
                results = r
                    .topics
                    .into_iter()
                    .map(|t| (t.name.0.to_string(), (t.error_code, t.error_message)))
                    .collect();
            }
            Ok(open
                .iter()
                .map(|name| {
                    if unsupported(by_name[name.as_str()]) {
                        return Err(ClientError::UnsupportedVersion {
                            addr: conn.addr().to_string(),
                            api: "CreateTopics v4+ (broker default partitions or replicas)".into(),
                        });
                    }
                    let (code, message) =
                        results.get(name).ok_or_else(|| missing(conn.addr(), name))?;
                    check(*code, message.as_ref(), format!("create topic {name}"))
                })
                .collect())
        })
        .await
    }

    /// Deletes topics by name. Returns each distinct name once with its outcome.
    ///
    /// # Errors
    /// Per topic, [`ClientError::Kafka`] (UNKNOWN_TOPIC_OR_PARTITION, ...). The call fails
    /// as a whole only when no controller could be reached.
    pub async fn delete_topics(&self, names: &[String]) -> Result<Vec<(String, Result<()>)>> {
        self.settle(names, controller_moved, move |open: Vec<String>| async move {
            let conn = self.connect(&Route::Controller).await?;
            let version = conn.version(ApiKey::DeleteTopics)?;
            let topic = |n: &String| TopicName(StrBytes::from_string(n.clone()));
            let request = DeleteTopicsRequest::default().with_timeout_ms(self.timeout_ms());
            // v6 names topics in `topics`, by name or id (KIP-516); before, in `topic_names`.
            let request = if version >= 6 {
                request.with_topics(
                    open.iter()
                        .map(|n| DeleteTopicState::default().with_name(Some(topic(n))))
                        .collect(),
                )
            } else {
                request.with_topic_names(open.iter().map(topic).collect())
            };
            let r = match conn.send(version, &Request::DeleteTopics(request)).await?.wait().await? {
                Response::DeleteTopics(r) => r,
                other => return Err(unexpected(conn.addr(), &other)),
            };
            let results: HashMap<String, _> = r
                .responses
                .into_iter()
                .filter_map(|t| Some((t.name?.0.to_string(), (t.error_code, t.error_message))))
                .collect();
            Ok(open
                .iter()
                .map(|name| {
                    let (code, message) =
                        results.get(name).ok_or_else(|| missing(conn.addr(), name))?;
                    check(*code, message.as_ref(), format!("delete topic {name}"))
                })
                .collect())
        })
        .await
    }

    /// Every topic, by name; internal ones only with `include_internal`.
    ///
    /// # Errors
    /// A network error if no broker answers within the deadline.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<TopicListing>> {
        let response =
            self.retry(transient, move || self.cluster.metadata_request(None, false)).await?;
        let mut topics: Vec<TopicListing> = response
            .topics
            .iter()
            .filter(|t| t.error_code == 0 && (include_internal || !t.is_internal))
            .filter_map(|t| {
                Some(TopicListing {
                    name: t.name.as_ref()?.0.to_string(),
                    id: t.topic_id,
                    internal: t.is_internal,
                    partitions: t.partitions.len(),
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// The partitions, leaders and replicas of each distinct topic named, in the order
    /// first named.
    ///
    /// # Errors
    /// [`ClientError::UnknownTopic`] for a topic the cluster does not have, and
    /// [`ClientError::Kafka`] for another topic error.
    pub async fn describe_topics(&self, names: &[String]) -> Result<Vec<TopicDescription>> {
        let mut names = names.to_vec();
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| seen.insert(n.clone()));
        // A topic that is being created has no leader yet: LEADER_NOT_AVAILABLE passes.
        let retriable =
            |e: &ClientError| transient(e) || e.code() == Some(ErrorCode::LEADER_NOT_AVAILABLE);
        let names = &names;
        self.retry(retriable, move || async move {
            let response = self.cluster.metadata_request(Some(names.as_slice()), false).await?;
            let by_name: HashMap<&str, &MetadataResponseTopic> = response
                .topics
                .iter()
                .filter_map(|t| Some((t.name.as_ref()?.0.as_str(), t)))
                .collect();
            names
                .iter()
                .map(|name| {
                    let t = by_name.get(name.as_str()).ok_or_else(|| missing("metadata", name))?;
                    describe(name, t)
                })
                .collect()
        })
        .await
    }

    /// Raises topics' partition counts to the totals given (or with `validate_only` checks
    /// that it could). Returns each distinct topic once; a topic given twice is raised to
    /// its first total.
    ///
    /// # Errors
    /// Per topic, [`ClientError::Kafka`] (INVALID_PARTITIONS for a total that is not
    /// higher, UNKNOWN_TOPIC_OR_PARTITION, ...). The call fails as a whole only when no
    /// controller could be reached.
    pub async fn create_partitions(
        &self,
        totals: &[(String, i32)],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<()>)>> {
        let mut by_name: HashMap<&str, i32> = HashMap::new();
        for (name, total) in totals {
            by_name.entry(name).or_insert(*total);
        }
        let names: Vec<String> = totals.iter().map(|(n, _)| n.clone()).collect();
        let by_name = &by_name;
        self.settle(&names, controller_moved, move |open: Vec<String>| async move {
            let conn = self.connect(&Route::Controller).await?;
            let version = conn.version(ApiKey::CreatePartitions)?;
            let topics = open
                .iter()
                .map(|n| {
                    CreatePartitionsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(n.clone())))
                        .with_count(by_name[n.as_str()])
                        // kafka-protocol defaults to an empty list, which asks for no
                        // new partition to be placed anywhere; null lets the broker choose.
                        .with_assignments(None)
                })
                .collect();
            let request = CreatePartitionsRequest::default()
                .with_topics(topics)
                .with_timeout_ms(self.timeout_ms())
                .with_validate_only(validate_only);
            let r = match conn
                .send(version, &Request::CreatePartitions(request))
                .await?
                .wait()
                .await?
            {
                Response::CreatePartitions(r) => r,
                other => return Err(unexpected(conn.addr(), &other)),
            };
            let results: HashMap<String, _> = r
                .results
                .into_iter()
                .map(|t| (t.name.0.to_string(), (t.error_code, t.error_message)))
                .collect();
            Ok(open
                .iter()
                .map(|name| {
                    let (code, message) =
                        results.get(name).ok_or_else(|| missing(conn.addr(), name))?;
                    check(*code, message.as_ref(), format!("create partitions of {name}"))
                })
                .collect())
        })
        .await
    }
}

fn creatable(t: &NewTopic) -> CreatableTopic {
    let configs = t
        .configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.clone()))
                .with_value(Some(StrBytes::from_string(v.clone())))
        })
        .collect();
    CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(t.name.clone())))
        .with_num_partitions(t.partitions.unwrap_or(-1))
        .with_replication_factor(t.replication_factor.unwrap_or(-1))
        .with_configs(configs)
}

fn describe(name: &str, t: &MetadataResponseTopic) -> Result<TopicDescription> {
    let code = ErrorCode::from_code(t.error_code);
    if code == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
        return Err(ClientError::UnknownTopic { topic: name.to_string() });
    }
    check(t.error_code, None, format!("describe topic {name}"))?;
    let mut partitions: Vec<PartitionDescription> = t
        .partitions
        .iter()
        .map(|p| PartitionDescription {
            partition: p.partition_index,
            leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
            leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
            replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
            isr: p.isr_nodes.iter().map(|b| b.0).collect(),
        })
        .collect();
    partitions.sort_by_key(|p| p.partition);
    Ok(TopicDescription {
        name: name.to_string(),
        id: t.topic_id,
        internal: t.is_internal,
        partitions,
    })
}
