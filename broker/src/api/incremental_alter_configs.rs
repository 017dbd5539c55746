//! IncrementalAlterConfigs (KIP-339): changes single topic config keys, leaving the others.
//!
//! Operations, applied in request order to the topic's current overrides:
//! - SET (0): override the key; DELETE (1): drop the override (back to the default);
//! - APPEND (2) / SUBTRACT (3): add or remove comma-separated items of a list config
//!   (`cleanup.policy`), starting from the override or, without one, from the default
//!   value, in time linear in the items ([`alter_list`]). Any other key is INVALID_CONFIG
//!   ("its type is not LIST"), as in Kafka.
//!
//! The read-modify-write runs under the catalog's change lock (`Topics::update_overrides`),
//! so two clients changing different keys at once both win. As in Kafka's broker:
//! a key named twice in one resource, a null value outside DELETE, or an unknown
//! operation is INVALID_REQUEST; a resource named twice gets one INVALID_REQUEST result;
//! the resulting set is validated as a whole (INVALID_CONFIG; POLICY_VIOLATION when it
//! would delete an internal topic's records) and `validate_only` changes nothing. BROKER resources are handled as in AlterConfigs: no dynamic broker configs.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::api::alter_configs::{alter_broker, per_resource};
use crate::api::describe_configs::{no_overrides, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::broker::Broker;
use crate::error::Refusal;
use crate::topic_config::{alter_list, config_value, shown, topic_config, EffectiveConfig};
use crate::topics::{validate_name, TopicError};

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Answers IncrementalAlterConfigs. Runs on a blocking thread: it rewrites the catalog.
pub fn handle(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
    _version: i16,
) -> IncrementalAlterConfigsResponse {
    let mut response = IncrementalAlterConfigsResponse::default();
    let outcomes = per_resource(
        &request.resources,
        |r| (r.resource_type, r.resource_name.as_str()),
        |r| alter(broker, r, request.validate_only),
    );
    for (resource, outcome) in outcomes {
        let mut out = AlterConfigsResourceResponse::default();
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name.clone();
        match outcome {
            Ok(()) => out.error_message = None,
            Err(refusal) => {
                out.error_code = refusal.code.code();
                out.error_message = refusal.message.map(StrBytes::from_string);
            }
        }
        response.responses.push(out);
    }
    response
}

fn alter(
    broker: &Broker,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), Refusal> {
    let invalid = |m: String| Err(Refusal::new(ErrorCode::INVALID_REQUEST, m));
    let mut keys = HashSet::new();
    let repeated: Vec<&str> =
        resource.configs.iter().map(|c| c.name.as_str()).filter(|k| !keys.insert(*k)).collect();
    if !repeated.is_empty() {
        return invalid(format!("duplicate config keys: {}", repeated.join(",")));
    }
    if let Some(c) =
        resource.configs.iter().find(|c| !(SET..=SUBTRACT).contains(&c.config_operation))
    {
        return invalid(format!("unknown config operation {} for {}", c.config_operation, c.name));
    }
    let nulls: Vec<&str> = resource
        .configs
        .iter()
        .filter(|c| c.config_operation != DELETE && c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !nulls.is_empty() {
        return invalid(format!("null value not supported for: {}", nulls.join(", ")));
    }
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        RESOURCE_TOPIC => {
            validate_name(name)?;
            let defaults = no_overrides(broker.topics.defaults());
            broker
                .topics
                .update_overrides(name, validate_only, |current| {
                    apply(&defaults, current, &resource.configs)
                })
                .map_err(Refusal::from)
        }
        RESOURCE_BROKER => {
            alter_broker(broker, name, resource.configs.iter().map(|c| c.name.as_str()))
        }
        t => invalid(format!("unsupported resource type {t}")),
    }
}

/// The override set after `ops`; values are known non-null except for DELETE.
fn apply(
    defaults: &EffectiveConfig,
    current: &BTreeMap<String, String>,
    ops: &[AlterableConfig],
) -> Result<BTreeMap<String, String>, TopicError> {
    let mut next = current.clone();
    for op in ops {
        let key = op.name.to_string();
        let value = op.value.as_ref().map_or("", |v| v.as_str());
        match op.config_operation {
            DELETE => {
                next.remove(&key);
            }
            APPEND | SUBTRACT => {
                let verb = if op.config_operation == APPEND { "append" } else { "subtract" };
                let refuse = |reason: String| TopicError::InvalidConfig {
                    key: shown(&key).to_owned(),
                    value: shown(value).to_owned(),
                    reason,
                };
                let Some(row) = topic_config(&key).filter(|row| row.key.is_list()) else {
                    return Err(refuse(format!("can't {verb} to a config whose type is not list")));
                };
                let base = next.get(&key).cloned().unwrap_or_else(|| config_value(defaults, &key));
                let altered = alter_list(&row.key, &base, value, op.config_operation == APPEND)
                    .map_err(|why| refuse(why.to_string()))?;
                next.insert(key, altered);
            }
            // SET: the only operation left once `alter` has refused unknown ones.
            _ => {
                next.insert(key, value.to_owned());
            }
        }
    }
    Ok(next)
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
        let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        (dir, Broker::open(config).unwrap().0)
    }

    fn resource(t: i8, name: &str, ops: &[(&str, i8, Option<&str>)]) -> AlterConfigsResource {
        let mut r = AlterConfigsResource::default();
        r.resource_type = t;
        r.resource_name = StrBytes::from_string(name.to_owned());
        r.configs = ops
            .iter()
            .map(|(k, op, v)| {
                let mut c = AlterableConfig::default();
                c.name = StrBytes::from_string((*k).to_owned());
                c.config_operation = *op;
                c.value = v.map(|v| StrBytes::from_string(v.to_owned()));
                c
            })
            .collect();
        r
    }

    fn alter(
        broker: &Broker,
        resources: Vec<AlterConfigsResource>,
        validate_only: bool,
    ) -> Vec<i16> {
        let mut r = IncrementalAlterConfigsRequest::default();
        r.resources = resources;
        r.validate_only = validate_only;
        handle(broker, r, 1).responses.iter().map(|r| r.error_code).collect()
    }

    fn overrides(broker: &Broker, topic: &str) -> Vec<(String, String)> {
        broker.topics.get(topic).unwrap().overrides.clone().into_iter().collect()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn set_delete_append_and_subtract_change_single_keys() {
        let (_dir, broker) = broker();
        let mut old = BTreeMap::new();
        old.insert("segment.ms".to_owned(), "1000".to_owned());
        old.insert("retention.bytes".to_owned(), "100000".to_owned());
        broker.topics.create("t", 1, 1, old, false).unwrap();
        let ops = [
            ("retention.ms", SET, Some("5000")),
            ("segment.ms", DELETE, None),
            ("cleanup.policy", APPEND, Some("compact")),
        ];
        assert_eq!(alter(&broker, vec![resource(RESOURCE_TOPIC, "t", &ops)], false), [0]);
        let want = vec![
            pair("cleanup.policy", "delete,compact"),
            pair("retention.bytes", "100000"),
            pair("retention.ms", "5000"),
        ];
        assert_eq!(overrides(&broker, "t"), want);
        let topic = broker.topics.get("t").unwrap();
        assert_eq!(topic.partitions[0].log().unwrap().config().retention_ms, 5000);
        let described = crate::api::describe_configs::topic_configs(&broker, &topic);
        let segment = described.iter().find(|d| d.name == "segment.ms").unwrap();
        assert_eq!(segment.source, crate::api::describe_configs::DEFAULT_CONFIG);
        let ops = [("cleanup.policy", SUBTRACT, Some("delete"))];
        assert_eq!(alter(&broker, vec![resource(RESOURCE_TOPIC, "t", &ops)], false), [0]);
        assert_eq!(overrides(&broker, "t")[0], pair("cleanup.policy", "compact"));
    }

    #[test]
    fn bad_requests_change_nothing() {
        let (_dir, broker) = broker();
        broker.topics.create("t", 1, 1, BTreeMap::new(), false).unwrap();
        let set = [("retention.ms", SET, Some("5000"))];
        let resources = vec![
            resource(RESOURCE_TOPIC, "t", &[("retention.ms", APPEND, Some("1"))]),
            resource(RESOURCE_TOPIC, "u", &[("retention.ms", SET, Some("soon"))]),
            resource(RESOURCE_TOPIC, "v", &[("retention.ms", SET, None)]),
            resource(RESOURCE_TOPIC, "w", &[("a", SET, Some("1")), ("a", DELETE, None)]),
            resource(RESOURCE_TOPIC, "x", &[("retention.ms", 9, Some("1"))]),
            resource(RESOURCE_TOPIC, "missing", &set),
            resource(RESOURCE_BROKER, "0", &[("num.partitions", SET, Some("3"))]),
            resource(RESOURCE_TOPIC, "dup", &set),
            resource(RESOURCE_TOPIC, "dup", &set),
        ];
        let config = ErrorCode::INVALID_CONFIG.code();
        let invalid = ErrorCode::INVALID_REQUEST.code();
        let unknown = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code();
        let want = [config, unknown, invalid, invalid, invalid, unknown, invalid, invalid];
        assert_eq!(alter(&broker, resources, false), want);
        assert!(overrides(&broker, "t").is_empty());
        let bad = resource(RESOURCE_TOPIC, "t", &[("retention.ms", SET, Some("soon"))]);
        assert_eq!(alter(&broker, vec![bad], false), [config]);
        assert_eq!(alter(&broker, vec![resource(RESOURCE_TOPIC, "t", &set)], true), [0]);
        assert!(overrides(&broker, "t").is_empty(), "validate only");
    }

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let (_dir, broker) = broker();
        broker.topics.create("t", 1, 1, BTreeMap::new(), false).unwrap();
        let s = support(ApiKey::IncrementalAlterConfigs).unwrap();
        for version in s.advertised.min..=s.advertised.max {
            let mut r = IncrementalAlterConfigsRequest::default();
            r.resources = vec![
                resource(RESOURCE_TOPIC, "t", &[("retention.ms", SET, Some("5000"))]),
                resource(RESOURCE_TOPIC, "missing", &[("retention.ms", SET, Some("5000"))]),
            ];
            let response = Response::IncrementalAlterConfigs(handle(&broker, r, version));
            response.encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
