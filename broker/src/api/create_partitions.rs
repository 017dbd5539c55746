//! CreatePartitions: raises a topic's partition count (it can never shrink).
//!
//! Kafka's rules, as its controller applies them:
//! - a topic named twice in one request: one INVALID_REQUEST result, nothing changed;
//! - unknown topic: UNKNOWN_TOPIC_OR_PARTITION; a count that is not above the current one:
//!   INVALID_PARTITIONS;
//! - `assignments`, when given, must list one replica set per new partition; on a single
//!   node each set can only be this node, so they change nothing, but a set naming another
//!   node, an empty or repeated set, or the wrong number of sets is
//!   INVALID_REPLICA_ASSIGNMENT.
//!
//! A request that would add more than [`MAX_PARTITIONS_PER_REQUEST`] partitions in all
//! changes nothing: every topic gets POLICY_VIOLATION, as from Kafka's controller.
//!
//! `validate_only` runs every check and changes nothing. New partitions start empty, with
//! the topic's current config.

use std::collections::{HashMap, HashSet};

use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::error::Refusal;
use crate::topics::{too_many_partitions_message, MAX_PARTITIONS_PER_REQUEST};

/// Answers CreatePartitions. Runs on a blocking thread: it creates partition directories.
pub fn handle(
    broker: &Broker,
    request: CreatePartitionsRequest,
    _version: i16,
) -> CreatePartitionsResponse {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for t in &request.topics {
        *seen.entry(t.name.0.as_str()).or_default() += 1;
    }
    let duplicates: HashSet<String> =
        seen.into_iter().filter(|&(_, n)| n > 1).map(|(name, _)| name.to_owned()).collect();
    let mut reported = HashSet::new();
    let mut response = CreatePartitionsResponse::default();
    if added_partitions(broker, &request) > MAX_PARTITIONS_PER_REQUEST {
        for topic in request.topics {
            if !reported.insert(topic.name.0.to_string()) {
                continue;
            }
            let mut out = CreatePartitionsTopicResult::default();
            out.name = topic.name;
            out.error_code = ErrorCode::POLICY_VIOLATION.code();
            out.error_message = Some(StrBytes::from_string(too_many_partitions_message()));
            response.results.push(out);
        }
        return response;
    }
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut out = CreatePartitionsTopicResult::default();
        out.name = topic.name.clone();
        let outcome = if duplicates.contains(&name) {
            if !reported.insert(name) {
                continue;
            }
            Err(Refusal::new(ErrorCode::INVALID_REQUEST, "duplicate topic name"))
        } else {
            add(broker, &name, &topic, request.validate_only)
        };
        if let Err(refusal) = outcome {
            out.error_code = refusal.code.code();
            out.error_message = refusal.message.map(StrBytes::from_string);
        }
        response.results.push(out);
    }
    response
}

/// New partitions the request asks for across its existing topics.
fn added_partitions(broker: &Broker, request: &CreatePartitionsRequest) -> i64 {
    request
        .topics
        .iter()
        .filter_map(|t| {
            let current = broker.topics.get(&t.name.0)?.partitions.len() as i64;
            Some((i64::from(t.count) - current).max(0))
        })
        .sum()
}

fn add(
    broker: &Broker,
    name: &str,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), Refusal> {
    let Some(current) = broker.topics.get(name) else {
        return Err(Refusal::new(
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            format!("topic {name} does not exist"),
        ));
    };
    let current = current.partitions.len() as i64;
    // The count check comes first, as in Kafka; the catalog repeats it under its lock.
    if i64::from(topic.count) > current {
        if let Some(assignments) = &topic.assignments {
            check_assignments(broker, assignments, i64::from(topic.count) - current)?;
        }
    }
    broker.topics.add_partitions(name, topic.count, validate_only).map_err(Refusal::from)
}

/// Checks manual assignments for `added` new partitions against the one node there is.
fn check_assignments(
    broker: &Broker,
    assignments: &[CreatePartitionsAssignment],
    added: i64,
) -> Result<(), Refusal> {
    let node = broker.config.node_id;
    let bad = |m: String| Err(Refusal::new(ErrorCode::INVALID_REPLICA_ASSIGNMENT, m));
    if assignments.len() as i64 != added {
        return bad(format!(
            "increasing the partition count by {added} needs {added} assignments, got {}",
            assignments.len()
        ));
    }
    for (i, a) in assignments.iter().enumerate() {
        match a.broker_ids.as_slice() {
            [] => return bad(format!("assignment {i} has an empty replica list")),
            [only] if only.0 == node => {}
            ids => {
                return match ids.iter().find(|id| id.0 != node) {
                    Some(other) => bad(format!(
                        "assignment {i} names broker {}, but only broker {node} exists",
                        other.0
                    )),
                    None => bad(format!("assignment {i} lists broker {node} more than once")),
                };
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use bytes::BytesMut;
    use kafka_protocol::messages::{BrokerId, TopicName};
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use super::*;
    use crate::config::Config;

    fn broker() -> (tempfile::TempDir, Arc<Broker>) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        (dir, Broker::open(config).unwrap().0)
    }

    fn topic(name: &str, count: i32, assignments: Option<&[&[i32]]>) -> CreatePartitionsTopic {
        let mut t = CreatePartitionsTopic::default();
        t.name = TopicName(StrBytes::from_string(name.to_owned()));
        t.count = count;
        t.assignments = assignments.map(|a| {
            a.iter()
                .map(|ids| {
                    let mut a = CreatePartitionsAssignment::default();
                    a.broker_ids = ids.iter().map(|&id| BrokerId(id)).collect();
                    a
                })
                .collect()
        });
        t
    }

    fn request(topics: Vec<CreatePartitionsTopic>, validate_only: bool) -> CreatePartitionsRequest {
        let mut r = CreatePartitionsRequest::default();
        r.topics = topics;
        r.validate_only = validate_only;
        r
    }

    fn count(broker: &Broker, name: &str) -> usize {
        broker.topics.get(name).unwrap().partitions.len()
    }

    #[test]
    fn partitions_are_added_and_bad_requests_refused() {
        let (dir, broker) = broker();
        for name in ["a", "b", "c", "d", "e"] {
            broker.topics.create(name, 2, 1, BTreeMap::new(), false).unwrap();
        }
        let req = request(
            vec![
                topic("a", 4, None),
                topic("b", 3, Some(&[&[0]])),
                topic("c", 2, None),
                topic("d", 4, Some(&[&[0], &[1]])),
                topic("e", 4, Some(&[&[0]])),
                topic("missing", 4, None),
                topic("dup", 4, None),
                topic("dup", 5, None),
            ],
            false,
        );
        let r = handle(&broker, req, 3);
        let codes: Vec<i16> = r.results.iter().map(|r| r.error_code).collect();
        let assignment = ErrorCode::INVALID_REPLICA_ASSIGNMENT.code();
        let want = [
            0,
            0,
            ErrorCode::INVALID_PARTITIONS.code(),
            assignment,
            assignment,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
            ErrorCode::INVALID_REQUEST.code(),
        ];
        assert_eq!(codes, want);
        assert_eq!(r.results[0].error_message, None);
        assert!(r.results[2..].iter().all(|r| r.error_message.is_some()));
        assert_eq!(count(&broker, "a"), 4);
        assert!(dir.path().join("a-3").is_dir());
        assert_eq!(count(&broker, "b"), 3);
        assert_eq!(count(&broker, "d"), 2);
        assert_eq!(count(&broker, "e"), 2);
    }

    #[test]
    fn a_request_adding_too_many_partitions_changes_nothing() {
        let (_dir, broker) = broker();
        for name in ["a", "b"] {
            broker.topics.create(name, 1, 1, BTreeMap::new(), false).unwrap();
        }
        let huge = request(vec![topic("a", 2, None), topic("b", i32::MAX, None)], false);
        let r = handle(&broker, huge, 3);
        let policy = ErrorCode::POLICY_VIOLATION.code();
        assert_eq!(r.results.iter().map(|r| r.error_code).collect::<Vec<_>>(), [policy, policy]);
        assert!(r.results.iter().all(|r| r.error_message.is_some()));
        assert_eq!((count(&broker, "a"), count(&broker, "b")), (1, 1));
        // The bound is on the sum: each topic alone is within it.
        // Each topic has one partition, so `count` adds `count - 1`.
        let half = (MAX_PARTITIONS_PER_REQUEST / 2 + 2) as i32;
        let r =
            handle(&broker, request(vec![topic("a", half, None), topic("b", half, None)], true), 3);
        assert_eq!(r.results.iter().map(|r| r.error_code).collect::<Vec<_>>(), [policy, policy]);
        let r = handle(&broker, request(vec![topic("a", half, None)], true), 3);
        assert_eq!(r.results[0].error_code, 0);
    }

    #[test]
    fn validate_only_changes_nothing() {
        let (_dir, broker) = broker();
        broker.topics.create("a", 1, 1, BTreeMap::new(), false).unwrap();
        let r = handle(&broker, request(vec![topic("a", 8, None)], true), 0);
        assert_eq!(r.results[0].error_code, 0);
        assert_eq!(count(&broker, "a"), 1);
    }

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let (_dir, broker) = broker();
        broker.topics.create("a", 1, 1, BTreeMap::new(), false).unwrap();
        let s = support(ApiKey::CreatePartitions).unwrap();
        for version in s.advertised.min..=s.advertised.max {
            let grow = topic("a", i32::from(version) + 2, None);
            let req = request(vec![grow, topic("missing", 2, None)], false);
            let response = Response::CreatePartitions(handle(&broker, req, version));
            response.encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
