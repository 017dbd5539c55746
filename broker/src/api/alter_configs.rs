//! AlterConfigs (the legacy API): replaces the whole override set of a topic.
//!
//! Keys the request leaves out lose their override and fall back to the broker default,
//! which is why clients moved to IncrementalAlterConfigs (KIP-339). As in Kafka:
//! - a resource named twice in one request gets one INVALID_REQUEST result;
//! - a null value is INVALID_REQUEST ("null value not supported");
//! - topic configs are validated as a whole by the config table (INVALID_CONFIG), an
//!   unknown topic is UNKNOWN_TOPIC_OR_PARTITION, an invalid name INVALID_TOPIC_EXCEPTION;
//! - an internal topic refuses a set that would delete its records (POLICY_VIOLATION,
//!   [`crate::topic_config::check_internal`]): leaving `retention.ms` out counts, since
//!   the broker default would then apply;
//! - `validate_only` checks everything and changes nothing.
//!
//! BROKER resources must name this node (or be empty, the cluster default). Sluice has no
//! dynamic broker configs: an empty set (which clears nothing) succeeds, anything else is
//! INVALID_REQUEST saying so. Other resource types are INVALID_REQUEST.

use std::collections::{BTreeMap, HashMap, HashSet};

use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::api::describe_configs::{check_broker_name, RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::broker::Broker;
use crate::error::Refusal;
use crate::topics::validate_name;

/// Answers AlterConfigs. Runs on a blocking thread: it rewrites the topic catalog.
pub fn handle(
    broker: &Broker,
    request: AlterConfigsRequest,
    _version: i16,
) -> AlterConfigsResponse {
    let mut response = AlterConfigsResponse::default();
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
    let nulls: Vec<&str> =
        resource.configs.iter().filter(|c| c.value.is_none()).map(|c| c.name.as_str()).collect();
    if !nulls.is_empty() {
        let message = format!("null value not supported for: {}", nulls.join(", "));
        return Err(Refusal::new(ErrorCode::INVALID_REQUEST, message));
    }
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        RESOURCE_TOPIC => {
            validate_name(name)?;
            let overrides: BTreeMap<String, String> = resource
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            broker.topics.set_overrides(name, overrides, validate_only).map_err(Refusal::from)
        }
        RESOURCE_BROKER => {
            alter_broker(broker, name, resource.configs.iter().map(|c| c.name.as_str()))
        }
        t => {
            Err(Refusal::new(ErrorCode::INVALID_REQUEST, format!("unsupported resource type {t}")))
        }
    }
}

/// The (type, name) pairs that occur more than once.
/// Runs `alter` once per distinct resource, in request order; a resource named more than
/// once is not altered and gets one INVALID_REQUEST, as in Kafka's broker.
pub fn per_resource<R>(
    resources: &[R],
    key: impl Fn(&R) -> (i8, &str),
    mut alter: impl FnMut(&R) -> Result<(), Refusal>,
) -> Vec<(&R, Result<(), Refusal>)> {
    let duplicates = duplicate_resources(resources.iter().map(&key));
    let mut reported = HashSet::new();
    let mut out = Vec::with_capacity(resources.len());
    for resource in resources {
        let (t, name) = key(resource);
        let outcome = if duplicates.contains(&(t, name.to_owned())) {
            if !reported.insert((t, name.to_owned())) {
                continue;
            }
            Err(Refusal::new(ErrorCode::INVALID_REQUEST, "duplicate resource"))
        } else {
            alter(resource)
        };
        out.push((resource, outcome));
    }
    out
}

fn duplicate_resources<'a>(
    resources: impl Iterator<Item = (i8, &'a str)>,
) -> HashSet<(i8, String)> {
    let mut seen: HashMap<(i8, &str), usize> = HashMap::new();
    for r in resources {
        *seen.entry(r).or_default() += 1;
    }
    seen.into_iter().filter(|&(_, n)| n > 1).map(|((t, n), _)| (t, n.to_owned())).collect()
}

/// A change to a BROKER resource: only an empty one is possible without dynamic configs.
///
/// # Errors
/// INVALID_REQUEST for another node's id or for any key.
pub fn alter_broker<'a>(
    broker: &Broker,
    name: &str,
    mut keys: impl Iterator<Item = &'a str>,
) -> Result<(), Refusal> {
    check_broker_name(broker, name)?;
    match keys.next() {
        None => Ok(()),
        Some(key) => Err(Refusal::new(
            ErrorCode::INVALID_REQUEST,
            format!(
                "dynamic broker configs are not supported ({key}): \
                 set it in the broker's config file and restart"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::BytesMut;
    use kafka_protocol::messages::alter_configs_request::AlterableConfig;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use super::*;
    use crate::config::Config;

    fn broker() -> (tempfile::TempDir, Arc<Broker>) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        (dir, Broker::open(config).unwrap().0)
    }

    fn resource(
        resource_type: i8,
        name: &str,
        configs: &[(&str, Option<&str>)],
    ) -> AlterConfigsResource {
        let mut r = AlterConfigsResource::default();
        r.resource_type = resource_type;
        r.resource_name = StrBytes::from_string(name.to_owned());
        r.configs = configs
            .iter()
            .map(|(k, v)| {
                let mut c = AlterableConfig::default();
                c.name = StrBytes::from_string((*k).to_owned());
                c.value = v.map(|v| StrBytes::from_string(v.to_owned()));
                c
            })
            .collect();
        r
    }

    fn request(resources: Vec<AlterConfigsResource>, validate_only: bool) -> AlterConfigsRequest {
        let mut r = AlterConfigsRequest::default();
        r.resources = resources;
        r.validate_only = validate_only;
        r
    }

    fn codes(r: &AlterConfigsResponse) -> Vec<i16> {
        r.responses.iter().map(|r| r.error_code).collect()
    }

    #[test]
    fn the_override_set_is_replaced_and_visible_in_describe_configs() {
        let (_dir, broker) = broker();
        let mut old = BTreeMap::new();
        old.insert("segment.ms".to_owned(), "1000".to_owned());
        broker.topics.create("t", 1, 1, old, false).unwrap();
        let r = handle(
            &broker,
            request(vec![resource(RESOURCE_TOPIC, "t", &[("retention.ms", Some("5000"))])], false),
            2,
        );
        assert_eq!(codes(&r), [0]);
        assert_eq!(r.responses[0].error_message, None);
        let topic = broker.topics.get("t").unwrap();
        assert_eq!(topic.overrides.len(), 1, "segment.ms was dropped: the set is replaced");
        assert_eq!(topic.overrides["retention.ms"], "5000");
        assert_eq!(topic.partitions[0].log().unwrap().config().retention_ms, 5000);
        let described = crate::api::describe_configs::topic_configs(&broker, &topic);
        let retention = described.iter().find(|d| d.name == "retention.ms").unwrap();
        assert_eq!((retention.value.as_str(), retention.source), ("5000", 1));
    }

    #[test]
    fn bad_requests_change_nothing() {
        let (_dir, broker) = broker();
        broker.topics.create("t", 1, 1, BTreeMap::new(), false).unwrap();
        broker.topics.create("u", 1, 1, BTreeMap::new(), false).unwrap();
        let retention = [("retention.ms", Some("5000"))];
        let resources = vec![
            resource(RESOURCE_TOPIC, "t", &[("retention.ms", Some("soon"))]),
            resource(RESOURCE_TOPIC, "u", &[("no.such.config", Some("1"))]),
            resource(RESOURCE_TOPIC, "missing", &retention),
            resource(RESOURCE_TOPIC, "bad/name", &retention),
            resource(RESOURCE_TOPIC, "nul", &[("retention.ms", None)]),
            resource(RESOURCE_BROKER, "0", &[("num.partitions", Some("3"))]),
            resource(RESOURCE_BROKER, "9", &[]),
            resource(RESOURCE_BROKER, "", &[]),
            resource(8, "0", &[]),
            resource(RESOURCE_TOPIC, "dup", &retention),
            resource(RESOURCE_TOPIC, "dup", &retention),
        ];
        let r = handle(&broker, request(resources, false), 0);
        let config = ErrorCode::INVALID_CONFIG.code();
        let invalid = ErrorCode::INVALID_REQUEST.code();
        let want = [
            config,
            config,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
            ErrorCode::INVALID_TOPIC_EXCEPTION.code(),
            invalid,
            invalid,
            invalid,
            0,
            invalid,
            invalid,
        ];
        assert_eq!(codes(&r), want);
        assert!(r.responses[5].error_message.as_ref().unwrap().contains("dynamic broker configs"));
        assert!(
            r.responses.iter().all(|r| (r.error_code != 0) == r.error_message.is_some()),
            "every refused resource has a message, the altered one none"
        );
        assert!(broker.topics.get("t").unwrap().overrides.is_empty());
        assert!(broker.topics.get("u").unwrap().overrides.is_empty());
        let r = handle(&broker, request(vec![resource(RESOURCE_TOPIC, "t", &retention)], true), 1);
        assert_eq!(codes(&r), [0]);
        assert!(broker.topics.get("t").unwrap().overrides.is_empty(), "validate only");
    }

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let (_dir, broker) = broker();
        broker.topics.create("t", 1, 1, BTreeMap::new(), false).unwrap();
        let s = support(ApiKey::AlterConfigs).unwrap();
        for version in s.advertised.min..=s.advertised.max {
            let req = request(
                vec![
                    resource(RESOURCE_TOPIC, "t", &[("retention.ms", Some("5000"))]),
                    resource(RESOURCE_BROKER, "0", &[("num.partitions", Some("3"))]),
                ],
                false,
            );
            let response = Response::AlterConfigs(handle(&broker, req, version));
            response.encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
