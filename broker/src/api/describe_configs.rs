//! DescribeConfigs: the effective configs of a topic, or of this broker.
//!
//! - TOPIC (resource type 2): every name in [`TOPIC_CONFIGS`] with its effective value. An
//!   override reports source DYNAMIC_TOPIC_CONFIG (1); otherwise the value comes from the
//!   broker and reports DEFAULT_CONFIG (5), or STATIC_BROKER_CONFIG (4) when the broker's
//!   config file changed it from the built-in default, as Kafka's `ConfigHelper` does.
//!   Synonyms (v1+, when asked) list the override, then the broker property it falls back
//!   to (`retention.ms` → `log.retention.ms`) where the config file set it, then that
//!   property's built-in default, in Kafka's order of precedence. As Kafka's
//!   `ConfigHelper`, the default is listed only for a broker property Kafka gives a
//!   default of its own: `retention.ms`, `segment.ms`, `flush.ms` and `segment.jitter.ms`
//!   (whose broker properties default to null) and the configs without a broker property
//!   (`remote.storage.enable`) have no synonyms unless set, and their source is then
//!   DEFAULT_CONFIG. No topic config is read-only or sensitive.
//! - BROKER (resource type 4) with this node's id, or the empty name Kafka uses for the
//!   cluster-wide default: the broker settings clients look at. Every one is read-only:
//!   Sluice has no dynamic broker configs.
//! - Other resource types get INVALID_REQUEST, an unknown topic UNKNOWN_TOPIC_OR_PARTITION.
//!
//! An entry repeated exactly (resource and keys) is answered once, where it first
//! appears. `configuration_keys` null or empty means every config. v0 has no source and
//! no synonyms: it tells `is_default` instead, true where the source is DEFAULT_CONFIG,
//! which is how Kafka's clients read a v0 answer back (a value from the broker's config
//! file or a topic override is not a default). `config_type` and `documentation` start
//! at v3.

use std::collections::HashSet;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::config::Config;
use crate::error::Refusal;
use crate::topic_config::{
    config_value, ConfigType, EffectiveConfig, TopicDefaults, TOPIC_CONFIGS,
};
use crate::topics::{validate_name, Topic};

/// ConfigResource type of a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// ConfigResource type of a broker.
pub const RESOURCE_BROKER: i8 = 4;

/// ConfigSource: a topic override.
pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
/// ConfigSource: set in the broker's config file (or flags).
pub const STATIC_BROKER_CONFIG: i8 = 4;
/// ConfigSource: the built-in default.
pub const DEFAULT_CONFIG: i8 = 5;

const BOOLEAN: i8 = ConfigType::Boolean as i8;
const INT: i8 = ConfigType::Int as i8;
const LIST: i8 = ConfigType::List as i8;

/// One config as DescribeConfigs (and CreateTopics v5+) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The config name.
    pub name: &'static str,
    /// Its effective value.
    pub value: String,
    /// Where the value comes from (a ConfigSource value).
    pub source: i8,
    /// Whether it can be altered at run time.
    pub read_only: bool,
    /// Kafka's ConfigType (0 unknown).
    pub config_type: i8,
    /// A one-line description.
    pub doc: &'static str,
    /// (name, value, source), highest precedence first; the first is this entry itself.
    pub synonyms: Vec<(&'static str, String, i8)>,
}

/// Answers DescribeConfigs. Runs on a blocking thread (it reads the topic catalog).
pub fn handle(
    broker: &Broker,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    // An entry repeated exactly (the same resource and keys) is answered once, where it
    // first appears: a topic named a million times would otherwise be rendered,
    // documentation and all, a million times.
    let mut seen = HashSet::new();
    for resource in request.resources {
        let key = (
            resource.resource_type,
            resource.resource_name.clone(),
            resource.configuration_keys.clone().filter(|k| !k.is_empty()),
        );
        if !seen.insert(key) {
            continue;
        }
        let mut out = DescribeConfigsResult::default();
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name.clone();
        let name = resource.resource_name.as_str();
        let described = match resource.resource_type {
            RESOURCE_TOPIC => match (validate_name(name), broker.topics.get(name)) {
                (Err(e), _) => Err(Refusal::from(e)),
                (Ok(()), Some(topic)) => Ok(topic_configs(broker, &topic)),
                (Ok(()), None) => Err(Refusal::new(
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("topic {name:?} does not exist"),
                )),
            },
            RESOURCE_BROKER => {
                check_broker_name(broker, name).map(|()| broker_configs(&broker.config))
            }
            t => Err(Refusal::new(
                ErrorCode::INVALID_REQUEST,
                format!("unsupported resource type {t}"),
            )),
        };
        match described {
            Ok(configs) => {
                out.error_message = None;
                let keys = resource.configuration_keys.filter(|k| !k.is_empty());
                out.configs = configs
                    .into_iter()
                    .filter(|d| {
                        keys.as_ref().is_none_or(|k| k.iter().any(|k| k.as_str() == d.name))
                    })
                    .map(|d| {
                        entry(d, version, request.include_synonyms, request.include_documentation)
                    })
                    .collect();
            }
            Err(refusal) => {
                out.error_code = refusal.code.code();
                out.error_message = refusal.message.map(StrBytes::from_string);
            }
        }
        response.results.push(out);
    }
    response
}

/// Checks that a BROKER resource names this node (or is empty, the cluster default).
///
/// # Errors
/// INVALID_REQUEST with the message Kafka words it with.
pub fn check_broker_name(broker: &Broker, name: &str) -> Result<(), Refusal> {
    let node = broker.config.node_id;
    if name.is_empty() || name.parse::<i32>().is_ok_and(|id| id == node) {
        Ok(())
    } else {
        Err(Refusal::new(
            ErrorCode::INVALID_REQUEST,
            format!("unexpected broker id, expected {node} or empty string, but received {name:?}"),
        ))
    }
}

fn entry(
    d: Described,
    version: i16,
    synonyms: bool,
    documentation: bool,
) -> DescribeConfigsResourceResult {
    let mut e = DescribeConfigsResourceResult::default();
    e.name = StrBytes::from_static_str(d.name);
    e.value = Some(StrBytes::from_string(d.value));
    e.read_only = d.read_only;
    if version == 0 {
        e.is_default = d.source == DEFAULT_CONFIG;
    } else {
        e.config_source = d.source;
    }
    if synonyms {
        e.synonyms = d
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                let mut s = DescribeConfigsSynonym::default();
                s.name = StrBytes::from_static_str(name);
                s.value = Some(StrBytes::from_string(value));
                s.source = source;
                s
            })
            .collect();
    }
    if version >= 3 {
        e.config_type = d.config_type;
        e.documentation = documentation.then(|| StrBytes::from_static_str(d.doc));
    }
    e
}

/// Every topic config of `topic` in [`TOPIC_CONFIGS`] order, with sources and synonyms.
pub fn topic_configs(broker: &Broker, topic: &Topic) -> Vec<Described> {
    let actual = &topic.config;
    let defaults = no_overrides(broker.topics.defaults());
    let builtin = no_overrides(&TopicDefaults::from_config(&Config::default()));
    TOPIC_CONFIGS
        .iter()
        .map(|row| {
            let name = row.name();
            let default_value = config_value(&defaults, name);
            let builtin_value = config_value(&builtin, name);
            let mut synonyms = vec![];
            if topic.overrides.contains_key(name) {
                synonyms.push((name, config_value(actual, name), DYNAMIC_TOPIC_CONFIG));
            }
            if let Some(broker) = row.broker {
                if default_value != builtin_value {
                    synonyms.push((broker, default_value, STATIC_BROKER_CONFIG));
                }
                if row.broker_default {
                    synonyms.push((broker, builtin_value, DEFAULT_CONFIG));
                }
            }
            Described {
                name,
                value: config_value(actual, name),
                source: synonyms.first().map_or(DEFAULT_CONFIG, |s| s.2),
                read_only: false,
                config_type: row.key.config_type.code(),
                doc: row.key.doc,
                synonyms,
            }
        })
        .collect()
}

/// The effective config a topic without overrides gets.
pub fn no_overrides(defaults: &TopicDefaults) -> EffectiveConfig {
    EffectiveConfig::from_defaults(defaults)
}

/// The broker settings DescribeConfigs reports, all read-only.
pub fn broker_configs(config: &Config) -> Vec<Described> {
    let builtin = broker_values(&Config::default());
    broker_values(config)
        .into_iter()
        .zip(builtin)
        .map(|((name, value, config_type, doc), (_, builtin_value, ..))| {
            let source = if value == builtin_value { DEFAULT_CONFIG } else { STATIC_BROKER_CONFIG };
            let mut synonyms = vec![(name, value.clone(), source)];
            if source == STATIC_BROKER_CONFIG {
                synonyms.push((name, builtin_value, DEFAULT_CONFIG));
            }
            Described { name, value, source, read_only: true, config_type, doc, synonyms }
        })
        .collect()
}

/// The broker's own settings, then the broker synonym of every topic config, rendered by
/// the topic config table (a topic without overrides has exactly these values).
fn broker_values(c: &Config) -> Vec<(&'static str, String, i8, &'static str)> {
    let advertised = if c.advertised_host.contains(':') {
        format!("PLAINTEXT://[{}]:{}", c.advertised_host, c.advertised_port)
    } else {
        format!("PLAINTEXT://{}:{}", c.advertised_host, c.advertised_port)
    };
    let mut values = vec![
        ("node.id", c.node_id.to_string(), INT, "this broker's id"),
        ("listeners", format!("PLAINTEXT://{}", c.listen), LIST, "where the broker listens"),
        ("advertised.listeners", advertised, LIST, "where clients are told to connect"),
        ("log.dirs", c.data_dir.display().to_string(), LIST, "where partitions live"),
        ("num.partitions", c.num_partitions.to_string(), INT, "partitions of a new topic"),
        (
            "auto.create.topics.enable",
            c.auto_create_topics.to_string(),
            BOOLEAN,
            "create unknown topics on metadata requests",
        ),
        (
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
            INT,
            "largest request accepted",
        ),
    ];
    let topic_defaults = no_overrides(&TopicDefaults::from_config(c));
    values.extend(TOPIC_CONFIGS.iter().filter_map(|row| {
        let value = config_value(&topic_defaults, row.name());
        Some((row.broker?, value, row.key.config_type.code(), row.key.doc))
    }));
    values
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use bytes::BytesMut;
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use super::*;

    fn broker() -> (tempfile::TempDir, Arc<Broker>) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        (dir, Broker::open(config).unwrap().0)
    }

    fn resource(resource_type: i8, name: &str, keys: Option<&[&str]>) -> DescribeConfigsResource {
        let mut r = DescribeConfigsResource::default();
        r.resource_type = resource_type;
        r.resource_name = StrBytes::from_string(name.to_owned());
        r.configuration_keys =
            keys.map(|k| k.iter().map(|k| StrBytes::from_string((*k).to_owned())).collect());
        r
    }

    fn request(resources: Vec<DescribeConfigsResource>) -> DescribeConfigsRequest {
        let mut r = DescribeConfigsRequest::default();
        r.resources = resources;
        r.include_synonyms = true;
        r.include_documentation = true;
        r
    }

    fn value<'a>(r: &'a DescribeConfigsResult, name: &str) -> &'a DescribeConfigsResourceResult {
        r.configs.iter().find(|c| c.name.as_str() == name).unwrap()
    }

    #[test]
    fn topic_overrides_and_defaults_are_told_apart() {
        let (_dir, broker) = broker();
        let mut overrides = BTreeMap::new();
        overrides.insert("retention.ms".to_owned(), "1000".to_owned());
        broker.topics.create("t", 1, 1, overrides, false).unwrap();
        let response = handle(
            &broker,
            request(vec![
                resource(RESOURCE_TOPIC, "t", None),
                resource(RESOURCE_TOPIC, "t", Some(&["segment.bytes", "no.such"])),
                resource(RESOURCE_TOPIC, "missing", None),
                resource(RESOURCE_TOPIC, "bad/name", None),
                resource(RESOURCE_BROKER, "0", None),
                resource(RESOURCE_BROKER, "7", None),
                resource(8, "0", None),
            ]),
            4,
        );
        let r = &response.results;
        assert_eq!(r[0].error_code, 0);
        assert_eq!(r[0].error_message, None);
        assert_eq!(r[0].configs.len(), TOPIC_CONFIGS.len());
        let retention = value(&r[0], "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("1000"));
        assert_eq!(retention.config_source, DYNAMIC_TOPIC_CONFIG);
        assert_eq!(retention.config_type, ConfigType::Long.code());
        assert_eq!(retention.synonyms.len(), 1, "log.retention.ms has no default of its own");
        let index = value(&r[0], "segment.index.bytes");
        assert_eq!(index.config_source, DEFAULT_CONFIG);
        assert_eq!(index.synonyms.len(), 1);
        assert_eq!(index.synonyms[0].name.as_str(), "log.index.size.max.bytes");
        let remote = value(&r[0], "remote.storage.enable");
        assert_eq!(
            (remote.value.as_deref(), remote.config_source),
            (Some("false"), DEFAULT_CONFIG)
        );
        assert!(remote.synonyms.is_empty() && !remote.is_sensitive);
        let segment = value(&r[0], "segment.bytes");
        assert_eq!(segment.value.as_deref(), Some("1073741824"));
        assert_eq!(segment.config_source, DEFAULT_CONFIG);
        assert!(!segment.read_only);
        assert_eq!(r[1].configs.len(), 1, "filtered by configuration_keys");
        assert_eq!(r[2].error_code, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code());
        assert_eq!(r[3].error_code, ErrorCode::INVALID_TOPIC_EXCEPTION.code());
        assert_eq!(r[4].error_code, 0);
        let dirs = value(&r[4], "log.dirs");
        assert_eq!(dirs.config_source, STATIC_BROKER_CONFIG, "the test changed log.dirs");
        assert!(dirs.read_only);
        assert_eq!(value(&r[4], "num.partitions").config_source, DEFAULT_CONFIG);
        assert_eq!(r[5].error_code, ErrorCode::INVALID_REQUEST.code());
        assert_eq!(r[6].error_code, ErrorCode::INVALID_REQUEST.code());
    }

    #[test]
    fn an_entry_repeated_exactly_is_answered_once() {
        let (_dir, broker) = broker();
        broker.topics.create("t", 1, 1, BTreeMap::new(), false).unwrap();
        let mut resources = vec![resource(RESOURCE_TOPIC, "t", None); 1000];
        resources.push(resource(RESOURCE_TOPIC, "t", Some(&[])));
        resources.push(resource(RESOURCE_BROKER, "", None));
        resources.push(resource(RESOURCE_TOPIC, "t", Some(&["retention.ms"])));
        resources.push(resource(RESOURCE_TOPIC, "t", None));
        let response = handle(&broker, request(resources), 4);
        let answered: Vec<(i8, &str, usize)> = response
            .results
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str(), r.configs.len()))
            .collect();
        let all = TOPIC_CONFIGS.len();
        assert_eq!(answered[0], (RESOURCE_TOPIC, "t", all));
        assert_eq!(answered[1].0, RESOURCE_BROKER);
        assert_eq!(answered[2], (RESOURCE_TOPIC, "t", 1));
        assert_eq!(answered.len(), 3, "an empty key list is the same as none");
    }

    #[test]
    fn a_changed_broker_default_is_a_static_broker_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        config.log.retention_ms = 5000;
        let broker = Broker::open(config).unwrap().0;
        broker.topics.create("t", 1, 1, BTreeMap::new(), false).unwrap();
        let topic = broker.topics.get("t").unwrap();
        let d = topic_configs(&broker, &topic);
        let retention = d.iter().find(|d| d.name == "retention.ms").unwrap();
        assert_eq!(retention.value, "5000");
        assert_eq!(retention.source, STATIC_BROKER_CONFIG);
        assert_eq!(
            retention.synonyms,
            vec![("log.retention.ms", "5000".into(), STATIC_BROKER_CONFIG)]
        );
    }

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let (_dir, broker) = broker();
        broker.topics.create("t", 1, 1, BTreeMap::new(), false).unwrap();
        let s = support(ApiKey::DescribeConfigs).unwrap();
        for version in s.advertised.min..=s.advertised.max {
            let req = request(vec![
                resource(RESOURCE_TOPIC, "t", None),
                resource(RESOURCE_BROKER, "", None),
                resource(RESOURCE_TOPIC, "missing", None),
            ]);
            let response = Response::DescribeConfigs(handle(&broker, req, version));
            response.encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
