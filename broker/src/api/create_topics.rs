//! CreateTopics: creates topics in the catalog, or with `validate_only` checks that they
//! could be created.
//!
//! Kafka's rules, as its controller applies them:
//! - `num_partitions` and `replication_factor` -1 mean the broker defaults (KIP-464):
//!   `num.partitions`, and one replica (the only one a single node has).
//! - Manual `assignments` exclude both counts (INVALID_REQUEST when they are set too).
//!   They are honoured when every partition 0..n is listed once with this node as its only
//!   replica; any other node, an empty or repeated replica list, or a gap in the partition
//!   indexes is INVALID_REPLICA_ASSIGNMENT.
//! - A name given twice in one request gets one INVALID_REQUEST result and is not created.
//! - A name that differs from an existing topic only by `.` versus `_` collides with it
//!   (their metric names would be the same): INVALID_TOPIC_EXCEPTION.
//! - A config with a null value is INVALID_CONFIG; other configs are validated by the
//!   config table like any override, and an internal topic (not yet created) whose configs
//!   would delete its records is POLICY_VIOLATION.
//! - A request whose topics add up to more than [`MAX_PARTITIONS_PER_REQUEST`] partitions
//!   creates nothing: every topic gets POLICY_VIOLATION.
//!
//! v0 has neither `validate_only` (it always creates) nor error messages in its results:
//! v1 added both (Kafka 3.9 serves v0 and v1; 4.0 dropped them, KIP-896). From v5 a
//! result carries the partition count, replication factor and every topic config
//! (as DescribeConfigs reports them); from v7 the topic id. A `validate_only` result has
//! no topic id: the topic was not created, so no id names it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::api::describe_configs::topic_configs;
use crate::broker::Broker;
use crate::error::Refusal;
use crate::topics::{
    refuse_if_internal, too_many_partitions_message, NewTopic, ProtectedOperation, Topic,
    TopicError, MAX_PARTITIONS_PER_REQUEST,
};

/// Answers CreateTopics. Runs on a blocking thread: it creates partition directories.
pub fn handle(broker: &Broker, request: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for t in &request.topics {
        *seen.entry(t.name.0.as_str()).or_default() += 1;
    }
    let duplicates: HashSet<String> =
        seen.into_iter().filter(|&(_, n)| n > 1).map(|(name, _)| name.to_owned()).collect();
    let mut reported = HashSet::new();
    let mut response = CreateTopicsResponse::default();
    if requested_partitions(broker, &request) > MAX_PARTITIONS_PER_REQUEST {
        for topic in request.topics {
            if !reported.insert(topic.name.0.to_string()) {
                continue;
            }
            let mut out = CreatableTopicResult::default();
            out.name = topic.name;
            out.error_code = ErrorCode::POLICY_VIOLATION.code();
            out.error_message = Some(StrBytes::from_string(too_many_partitions_message()));
            response.topics.push(out);
        }
        return response;
    }
    // Every topic is checked first, then all that passed are created with one catalog
    // write (a request of many topics must not rewrite the catalog once per topic).
    let mut entries = Vec::with_capacity(request.topics.len());
    let mut wanted = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut out = CreatableTopicResult::default();
        out.name = topic.name.clone();
        if duplicates.contains(&name) {
            if !reported.insert(name) {
                continue;
            }
            out.error_code = ErrorCode::INVALID_REQUEST.code();
            out.error_message = Some(StrBytes::from_static_str("duplicate topic name"));
            entries.push((out, None));
            continue;
        }
        match new_topic(broker, name, topic) {
            Ok(t) => {
                entries.push((out, Some(wanted.len())));
                wanted.push(t);
            }
            Err(refusal) => {
                refuse(&mut out, refusal);
                entries.push((out, None));
            }
        }
    }
    // A validated topic has no partitions yet: its results carry the count asked for.
    let counts: Vec<i32> = wanted.iter().map(|t| t.partitions).collect();
    let mut created: Vec<Option<Result<Arc<Topic>, TopicError>>> =
        broker.topics.create_all(wanted, request.validate_only).into_iter().map(Some).collect();
    for (mut out, index) in entries {
        let Some(i) = index else {
            response.topics.push(out);
            continue;
        };
        match created[i].take().expect("invariant: one result per wanted topic") {
            Ok(created) => {
                out.error_message = None;
                if version >= 5 {
                    out.num_partitions = counts[i];
                    out.replication_factor = 1;
                    out.configs = Some(
                        topic_configs(broker, &created)
                            .into_iter()
                            .map(|d| {
                                let mut c = CreatableTopicConfigs::default();
                                c.name = StrBytes::from_static_str(d.name);
                                c.value = Some(StrBytes::from_string(d.value));
                                c.read_only = d.read_only;
                                c.config_source = d.source;
                                c
                            })
                            .collect(),
                    );
                }
                if version >= 7 && !request.validate_only {
                    out.topic_id = created.id;
                }
            }
            Err(e) => refuse(&mut out, Refusal::from(e)),
        }
        response.topics.push(out);
    }
    response
}

/// A topic's result refused. The message is set at every version: v0 has no
/// `error_message`, and its encoding leaves it out.
fn refuse(out: &mut CreatableTopicResult, refusal: Refusal) {
    out.error_code = refusal.code.code();
    out.error_message = refusal.message.map(StrBytes::from_string);
}

/// Partitions the request would create at most: as Kafka counts them, before any topic
/// is checked, so a topic that would fail anyway still counts.
fn requested_partitions(broker: &Broker, request: &CreateTopicsRequest) -> i64 {
    request
        .topics
        .iter()
        .map(|t| match (t.assignments.len(), t.num_partitions) {
            (0, -1) => i64::from(broker.config.num_partitions),
            (0, n) => i64::from(n.max(0)),
            (assigned, _) => assigned as i64,
        })
        .sum()
}

/// The topic a request entry asks for, or why its result is refused.
fn new_topic(broker: &Broker, name: String, topic: CreatableTopic) -> Result<NewTopic, Refusal> {
    // An existing one (the broker made it) is TOPIC_ALREADY_EXISTS, as Kafka answers.
    if broker.topics.get(&name).is_none() {
        refuse_if_internal(&name, ProtectedOperation::Create)?;
    }
    let nulls: Vec<&str> =
        topic.configs.iter().filter(|c| c.value.is_none()).map(|c| c.name.as_str()).collect();
    if !nulls.is_empty() {
        return Err(Refusal::new(
            ErrorCode::INVALID_CONFIG,
            format!("null value not supported for topic configs: {}", nulls.join(",")),
        ));
    }
    let (partitions, replication_factor) = if topic.assignments.is_empty() {
        let partitions = match topic.num_partitions {
            -1 => broker.config.num_partitions,
            n => n,
        };
        (partitions, topic.replication_factor)
    } else if topic.num_partitions != -1 || topic.replication_factor != -1 {
        return Err(Refusal::new(
            ErrorCode::INVALID_REQUEST,
            "num_partitions or replication_factor was set together with manual assignments; \
             only one of the two may be used",
        ));
    } else {
        (manual_partitions(broker, &topic)?, 1)
    };
    let overrides: BTreeMap<String, String> = topic
        .configs
        .into_iter()
        .filter_map(|c| Some((c.name.to_string(), c.value?.to_string())))
        .collect();
    Ok(NewTopic { name, partitions, replication_factor, overrides })
}

/// The partition count a manual assignment implies, if it is one a single node can honour.
fn manual_partitions(broker: &Broker, topic: &CreatableTopic) -> Result<i32, Refusal> {
    let node = broker.config.node_id;
    let bad = |m: String| Refusal::new(ErrorCode::INVALID_REPLICA_ASSIGNMENT, m);
    let mut indexes = Vec::with_capacity(topic.assignments.len());
    for a in &topic.assignments {
        let p = a.partition_index;
        match a.broker_ids.as_slice() {
            [] => return Err(bad(format!("partition {p} has an empty replica list"))),
            [only] if only.0 == node => {}
            ids => {
                return Err(match ids.iter().find(|id| id.0 != node) {
                    Some(other) => bad(format!(
                        "partition {p} names broker {}, but only broker {node} exists",
                        other.0
                    )),
                    None => bad(format!("partition {p} lists broker {node} more than once")),
                });
            }
        }
        indexes.push(p);
    }
    indexes.sort_unstable();
    if indexes.iter().enumerate().any(|(i, &p)| i64::from(p) != i as i64) {
        return Err(bad("partitions must be numbered 0 to n-1, each once".to_owned()));
    }
    i32::try_from(indexes.len()).map_err(|_| bad("too many partitions".to_owned()))
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopicConfig,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use super::*;
    use crate::config::Config;

    fn topic_name(name: &str) -> TopicName {
        TopicName(StrBytes::from_string(name.to_owned()))
    }

    fn broker() -> (tempfile::TempDir, Arc<Broker>) {
        let dir = tempfile::tempdir().unwrap();
        let config =
            Config { data_dir: dir.path().to_owned(), num_partitions: 3, ..Config::default() };
        (dir, Broker::open(config).unwrap().0)
    }

    fn topic(
        name: &str,
        partitions: i32,
        rf: i16,
        configs: &[(&str, Option<&str>)],
    ) -> CreatableTopic {
        let mut t = CreatableTopic::default();
        t.name = topic_name(name);
        t.num_partitions = partitions;
        t.replication_factor = rf;
        t.configs = configs
            .iter()
            .map(|(k, v)| {
                let mut c = CreatableTopicConfig::default();
                c.name = StrBytes::from_string((*k).to_owned());
                c.value = v.map(|v| StrBytes::from_string(v.to_owned()));
                c
            })
            .collect();
        t
    }

    fn assigned(name: &str, replicas: &[&[i32]]) -> CreatableTopic {
        let mut t = topic(name, -1, -1, &[]);
        t.assignments = replicas
            .iter()
            .enumerate()
            .map(|(i, ids)| {
                let mut a = CreatableReplicaAssignment::default();
                a.partition_index = i as i32;
                a.broker_ids = ids.iter().map(|&id| BrokerId(id)).collect();
                a
            })
            .collect();
        t
    }

    fn request(topics: Vec<CreatableTopic>, validate_only: bool) -> CreateTopicsRequest {
        let mut r = CreateTopicsRequest::default();
        r.topics = topics;
        r.validate_only = validate_only;
        r
    }

    fn codes(r: &CreateTopicsResponse) -> Vec<(String, i16)> {
        r.topics.iter().map(|t| (t.name.0.to_string(), t.error_code)).collect()
    }

    #[test]
    fn topics_are_created_with_defaults_configs_and_ids() {
        let (_dir, broker) = broker();
        let req = request(
            vec![
                topic("a", 2, 1, &[("retention.ms", Some("1000"))]),
                topic("b", -1, -1, &[]),
                assigned("c", &[&[0], &[0]]),
            ],
            false,
        );
        let r = handle(&broker, req, 7);
        assert_eq!(codes(&r), vec![("a".into(), 0), ("b".into(), 0), ("c".into(), 0)]);
        let a = broker.topics.get("a").unwrap();
        assert_eq!(a.partitions.len(), 2);
        assert_eq!(a.overrides["retention.ms"], "1000");
        assert_eq!(r.topics[0].topic_id, a.id);
        assert_eq!(r.topics[0].num_partitions, 2);
        assert_eq!(r.topics[0].replication_factor, 1);
        assert_eq!(r.topics[0].error_message, None);
        let configs = r.topics[0].configs.as_ref().unwrap();
        let retention = configs.iter().find(|c| c.name.as_str() == "retention.ms").unwrap();
        assert_eq!(retention.value.as_deref(), Some("1000"));
        assert_eq!(retention.config_source, 1);
        assert_eq!(broker.topics.get("b").unwrap().partitions.len(), 3, "num.partitions");
        assert_eq!(r.topics[1].num_partitions, 3);
        assert_eq!(broker.topics.get("c").unwrap().partitions.len(), 2, "manual assignment");
    }

    #[test]
    fn bad_requests_get_per_topic_errors() {
        let (_dir, broker) = broker();
        broker.topics.create("taken", 1, 1, BTreeMap::new(), false).unwrap();
        broker.topics.create("my.topic", 1, 1, BTreeMap::new(), false).unwrap();
        let mut both = assigned("both", &[&[0]]);
        both.num_partitions = 1;
        let req = request(
            vec![
                topic("dup", 1, 1, &[]),
                topic("taken", 1, 1, &[]),
                topic("dup", 1, 1, &[]),
                topic("bad/name", 1, 1, &[]),
                topic("zero", 0, 1, &[]),
                topic("rf3", 1, 3, &[]),
                topic("cfg", 1, 1, &[("retention.ms", Some("soon"))]),
                topic("nul", 1, 1, &[("retention.ms", None)]),
                assigned("elsewhere", &[&[0], &[5]]),
                both,
                topic("my_topic", 1, 1, &[]),
            ],
            false,
        );
        let r = handle(&broker, req, 4);
        let want = [
            ("dup", ErrorCode::INVALID_REQUEST),
            ("taken", ErrorCode::TOPIC_ALREADY_EXISTS),
            ("bad/name", ErrorCode::INVALID_TOPIC_EXCEPTION),
            ("zero", ErrorCode::INVALID_PARTITIONS),
            ("rf3", ErrorCode::INVALID_REPLICATION_FACTOR),
            ("cfg", ErrorCode::INVALID_CONFIG),
            ("nul", ErrorCode::INVALID_CONFIG),
            ("elsewhere", ErrorCode::INVALID_REPLICA_ASSIGNMENT),
            ("both", ErrorCode::INVALID_REQUEST),
            ("my_topic", ErrorCode::INVALID_TOPIC_EXCEPTION),
        ];
        let want: Vec<_> = want.iter().map(|(n, c)| ((*n).to_owned(), c.code())).collect();
        assert_eq!(codes(&r), want);
        assert!(r.topics.iter().all(|t| t.error_message.as_ref().is_some_and(|m| !m.is_empty())));
        assert!(broker.topics.get("dup").is_none());
        assert_eq!(broker.topics.list().len(), 2);
    }

    #[test]
    fn a_request_for_too_many_partitions_creates_nothing() {
        let (_dir, broker) = broker();
        let policy = ErrorCode::POLICY_VIOLATION.code();
        let req = request(vec![topic("small", 1, 1, &[]), topic("huge", i32::MAX, 1, &[])], false);
        let r = handle(&broker, req, 7);
        assert_eq!(codes(&r), vec![("small".into(), policy), ("huge".into(), policy)]);
        assert!(r.topics.iter().all(|t| t.error_message.is_some()));
        assert!(broker.topics.get("small").is_none());
        // The bound is on the sum, and a topic on the default count counts that default.
        let half = (MAX_PARTITIONS_PER_REQUEST / 2) as i32;
        let req = request(vec![topic("x", half, 1, &[]), topic("y", half - 2, 1, &[])], true);
        assert_eq!(codes(&handle(&broker, req, 7)), vec![("x".into(), 0), ("y".into(), 0)]);
        let req = request(
            vec![topic("x", half, 1, &[]), topic("y", half - 2, 1, &[]), topic("z", -1, -1, &[])],
            true,
        );
        let r = handle(&broker, req, 7);
        assert!(
            r.topics.iter().all(|t| t.error_code == policy),
            "3 default partitions tip it over"
        );
    }

    #[test]
    fn validate_only_creates_nothing() {
        let (_dir, broker) = broker();
        let r = handle(&broker, request(vec![topic("v", 4, -1, &[])], true), 7);
        assert_eq!(codes(&r), vec![("v".into(), 0)]);
        assert_eq!(r.topics[0].num_partitions, 4);
        assert!(r.topics[0].topic_id.is_nil());
        assert!(broker.topics.get("v").is_none());
    }

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let (_dir, broker) = broker();
        let s = support(ApiKey::CreateTopics).unwrap();
        for version in s.advertised.min..=s.advertised.max {
            let ok = topic(&format!("t{version}"), 1, -1, &[("cleanup.policy", Some("compact"))]);
            let req = request(vec![ok, topic("bad/name", 1, 1, &[])], false);
            let response = Response::CreateTopics(handle(&broker, req, version));
            response.encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
