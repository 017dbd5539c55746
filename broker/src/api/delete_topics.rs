//! DeleteTopics: removes topics from the catalog and their partitions from disk.
//!
//! v0–v5 name topics in `topic_names`; v6 lists `topics`, each with a name or a topic id
//! (KIP-516), never both. As Kafka's controller does:
//! - both a name and an id, or neither: INVALID_REQUEST for that entry;
//! - a name or an id given twice: one INVALID_REQUEST result, and nothing deleted for it;
//! - an unknown name: UNKNOWN_TOPIC_OR_PARTITION; an unknown id: UNKNOWN_TOPIC_ID.
//!
//! Results carry the topic id from v6 and an error message from v5; v0 is v1 without the
//! response's throttle time (Kafka 3.9 serves it; 4.0 dropped it, KIP-896). Deletion is
//! immediate: fetches already holding a segment finish reading it (see `Topics::delete`).

use std::collections::{HashMap, HashSet};

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;
use uuid::Uuid;

use crate::broker::Broker;
use crate::error::Refusal;

/// What one request entry names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    Name(String),
    Id(Uuid),
}

/// A v6 entry that does not name one topic: both a name and an id, or neither.
#[derive(Debug)]
struct Invalid {
    name: Option<String>,
    id: Uuid,
    reason: &'static str,
}

/// Answers DeleteTopics. Runs on a blocking thread: it removes partition directories.
pub fn handle(broker: &Broker, request: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    let entries: Vec<Result<Target, Invalid>> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| match (t.name, t.topic_id.is_nil()) {
                (Some(name), true) => Ok(Target::Name(name.0.to_string())),
                (None, false) => Ok(Target::Id(t.topic_id)),
                (Some(name), false) => Err(Invalid {
                    name: Some(name.0.to_string()),
                    id: t.topic_id,
                    reason: "you may not specify both topic name and topic id",
                }),
                (None, true) => Err(Invalid {
                    name: None,
                    id: t.topic_id,
                    reason: "neither topic name nor id were specified",
                }),
            })
            .collect()
    } else {
        request.topic_names.into_iter().map(|n| Ok(Target::Name(n.0.to_string()))).collect()
    };
    let mut seen: HashMap<&Target, usize> = HashMap::new();
    for target in entries.iter().flatten() {
        *seen.entry(target).or_default() += 1;
    }
    let duplicates: HashSet<Target> =
        seen.into_iter().filter(|&(_, n)| n > 1).map(|(t, _)| t.clone()).collect();
    let mut reported = HashSet::new();
    let mut response = DeleteTopicsResponse::default();
    for entry in entries {
        let result = match entry {
            Err(Invalid { name, id, reason }) => topic_result(
                name,
                id,
                Err(Refusal::new(ErrorCode::INVALID_REQUEST, reason)),
                version,
            ),
            Ok(target) if duplicates.contains(&target) => {
                if !reported.insert(target.clone()) {
                    continue;
                }
                let message = match target {
                    Target::Name(_) => "duplicate topic name",
                    Target::Id(_) => "duplicate topic id",
                };
                let (name, id) = match target {
                    Target::Name(n) => (Some(n), Uuid::nil()),
                    Target::Id(id) => (None, id),
                };
                topic_result(
                    name,
                    id,
                    Err(Refusal::new(ErrorCode::INVALID_REQUEST, message)),
                    version,
                )
            }
            Ok(Target::Name(name)) => {
                let outcome = broker.topics.delete(&name);
                let id = outcome.as_ref().map_or(Uuid::nil(), |id| *id);
                let outcome = outcome.map(|_| ()).map_err(Refusal::from);
                topic_result(Some(name), id, outcome, version)
            }
            Ok(Target::Id(id)) => match broker.topics.get_by_id(id) {
                None => {
                    let message = format!("topic id {id} does not exist");
                    let refusal = Refusal::new(ErrorCode::UNKNOWN_TOPIC_ID, message);
                    topic_result(None, id, Err(refusal), version)
                }
                Some(topic) => {
                    let outcome = match broker.topics.delete(&topic.name) {
                        Ok(_) => Ok(()),
                        // Deleted by someone else since the lookup: the id is gone.
                        Err(e @ crate::topics::TopicError::Unknown(_)) => {
                            Err(Refusal::new(ErrorCode::UNKNOWN_TOPIC_ID, e.to_string()))
                        }
                        Err(e) => Err(Refusal::from(e)),
                    };
                    topic_result(Some(topic.name.clone()), id, outcome, version)
                }
            },
        };
        response.responses.push(result);
    }
    let deleted = response
        .responses
        .iter()
        .filter(|r| r.error_code == 0)
        .filter_map(|r| r.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    broker.groups.topics_deleted_blocking(deleted);
    response
}

/// One result, with only the fields `version` has.
fn topic_result(
    name: Option<String>,
    id: Uuid,
    outcome: Result<(), Refusal>,
    version: i16,
) -> DeletableTopicResult {
    let mut r = DeletableTopicResult::default();
    // Names are nullable only in v6, where results for unknown ids have none; before v6
    // every entry came with a name.
    r.name = name.map(|n| TopicName(StrBytes::from_string(n)));
    if version >= 6 {
        r.topic_id = id;
    }
    if let Err(refusal) = outcome {
        r.error_code = refusal.code.code();
        if version >= 5 {
            r.error_message = refusal.message.map(StrBytes::from_string);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use bytes::BytesMut;
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use super::*;
    use crate::config::Config;

    fn broker() -> (tempfile::TempDir, Arc<Broker>) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        (dir, Broker::open(config).unwrap().0)
    }

    fn create(broker: &Broker, name: &str) -> Uuid {
        broker.topics.create(name, 2, 1, BTreeMap::new(), false).unwrap().id
    }

    fn by_names(names: &[&str]) -> DeleteTopicsRequest {
        let mut r = DeleteTopicsRequest::default();
        r.topic_names =
            names.iter().map(|n| TopicName(StrBytes::from_string((*n).to_owned()))).collect();
        r
    }

    fn state(name: Option<&str>, id: Uuid) -> DeleteTopicState {
        let mut s = DeleteTopicState::default();
        s.name = name.map(|n| TopicName(StrBytes::from_string(n.to_owned())));
        s.topic_id = id;
        s
    }

    fn codes(r: &DeleteTopicsResponse) -> Vec<i16> {
        r.responses.iter().map(|r| r.error_code).collect()
    }

    #[test]
    fn topics_are_deleted_by_name() {
        let (dir, broker) = broker();
        create(&broker, "a");
        create(&broker, "b");
        let r = handle(&broker, by_names(&["a", "missing", "b", "b"]), 5);
        let want =
            [0, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(), ErrorCode::INVALID_REQUEST.code()];
        assert_eq!(codes(&r), want);
        assert_eq!(r.responses[0].error_message, None);
        assert!(r.responses[1..].iter().all(|r| r.error_message.is_some()));
        let r = handle(&broker, by_names(&["missing"]), 4);
        assert_eq!(r.responses[0].error_message, None, "messages start at v5");
        assert!(broker.topics.get("a").is_none());
        assert!(!dir.path().join("a-0").exists());
        assert!(broker.topics.get("b").is_some(), "a duplicated name is not deleted");
    }

    #[test]
    fn topics_are_deleted_by_id_in_v6() {
        let (_dir, broker) = broker();
        let a = create(&broker, "a");
        let b = create(&broker, "b");
        let mut req = DeleteTopicsRequest::default();
        let unknown = Uuid::from_u128(42);
        req.topics = vec![
            state(None, a),
            state(Some("b"), Uuid::nil()),
            state(None, unknown),
            state(Some("b"), b),
            state(None, Uuid::nil()),
        ];
        let r = handle(&broker, req, 6);
        let invalid = ErrorCode::INVALID_REQUEST.code();
        assert_eq!(codes(&r), [0, 0, ErrorCode::UNKNOWN_TOPIC_ID.code(), invalid, invalid]);
        assert_eq!(r.responses[0].name.as_ref().unwrap().0.as_str(), "a");
        assert_eq!(r.responses[0].topic_id, a);
        assert_eq!(r.responses[1].topic_id, b);
        assert_eq!(r.responses[2].name, None);
        assert!(r.responses[2..].iter().all(|r| r.error_message.is_some()));
        assert!(broker.topics.list().is_empty());
    }

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let (_dir, broker) = broker();
        let s = support(ApiKey::DeleteTopics).unwrap();
        for version in s.advertised.min..=s.advertised.max {
            let name = format!("t{version}");
            let id = create(&broker, &name);
            let req = if version >= 6 {
                let mut r = DeleteTopicsRequest::default();
                r.topics = vec![
                    state(None, id),
                    state(Some("missing"), Uuid::nil()),
                    state(None, Uuid::from_u128(7)),
                ];
                r
            } else {
                by_names(&[&name, "missing", "dup", "dup"])
            };
            let response = Response::DeleteTopics(handle(&broker, req, version));
            response.encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
