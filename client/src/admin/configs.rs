//! Configs of topics and brokers: describe, replace (the legacy AlterConfigs) and change
//! key by key (IncrementalAlterConfigs, KIP-339).
//!
//! A broker's configs are asked of that broker (its node id is the resource name); the
//! empty name, Kafka's cluster-wide default, and topics go to any broker.

use std::collections::HashMap;

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use sluice_protocol::kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use sluice_protocol::kafka_protocol::messages::{
    alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};

use super::routing::{transient, Route};
use super::Admin;
use crate::cluster::{missing, unexpected};
use crate::error::{check, Result};

/// What kind of thing a config belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigResourceKind {
    /// A topic (wire type 2).
    Topic,
    /// A broker (wire type 4); the name is its node id, or empty for the cluster default.
    Broker,
}

impl ConfigResourceKind {
    /// The ConfigResource type on the wire.
    pub fn wire(self) -> i8 {
        match self {
            ConfigResourceKind::Topic => 2,
            ConfigResourceKind::Broker => 4,
        }
    }
}

/// A topic or broker whose configs are asked about or changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigResource {
    /// Topic or broker.
    pub kind: ConfigResourceKind,
    /// The topic's name, or the broker's node id.
    pub name: String,
}

impl ConfigResource {
    /// A topic's configs.
    pub fn topic(name: impl Into<String>) -> Self {
        ConfigResource { kind: ConfigResourceKind::Topic, name: name.into() }
    }

    /// Broker `node`'s configs.
    pub fn broker(node: i32) -> Self {
        ConfigResource { kind: ConfigResourceKind::Broker, name: node.to_string() }
    }

    /// The broker that answers for this resource.
    fn route(&self) -> Route {
        match (self.kind, self.name.parse::<i32>()) {
            (ConfigResourceKind::Broker, Ok(node)) => Route::Node(node),
            // A name that is no node id goes anywhere; the broker refuses it in its words.
            _ => Route::Any,
        }
    }

    fn is(&self, resource_type: i8, name: &StrBytes) -> bool {
        self.kind.wire() == resource_type && self.name == name.as_str()
    }
}

/// Where a config's value comes from (Kafka's ConfigSource).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigSource {
    /// A topic override.
    DynamicTopic,
    /// A dynamic config of this broker.
    DynamicBroker,
    /// A dynamic cluster-wide default.
    DynamicDefaultBroker,
    /// The broker's config file.
    StaticBroker,
    /// The built-in default.
    Default,
    /// A dynamic logger level of the broker.
    DynamicBrokerLogger,
    /// A client metrics subscription.
    ClientMetrics,
    /// A group config.
    Group,
    /// A source this client does not know, or none reported.
    Unknown,
}

impl ConfigSource {
    /// The source for a wire value.
    pub fn from_wire(source: i8) -> Self {
        match source {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            6 => ConfigSource::DynamicBrokerLogger,
            7 => ConfigSource::ClientMetrics,
            8 => ConfigSource::Group,
            _ => ConfigSource::Unknown,
        }
    }
}

/// One config as [`Admin::describe_configs`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Its name.
    pub name: String,
    /// Its value; `None` when it is sensitive or unset.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be altered.
    pub read_only: bool,
    /// Whether the value is the built-in default.
    pub is_default: bool,
    /// Whether it is a password or key (the broker does not send its value).
    pub sensitive: bool,
}

/// An operation of [`Admin::incremental_alter_configs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlterOpType {
    /// Set the value.
    Set,
    /// Remove the override, back to the default.
    Delete,
    /// Add items to a list config.
    Append,
    /// Remove items from a list config.
    Subtract,
}

impl AlterOpType {
    fn wire(self) -> i8 {
        match self {
            AlterOpType::Set => 0,
            AlterOpType::Delete => 1,
            AlterOpType::Append => 2,
            AlterOpType::Subtract => 3,
        }
    }
}

/// One change of [`Admin::incremental_alter_configs`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlterConfigOp {
    /// The config's name.
    pub name: String,
    /// What to do.
    pub op: AlterOpType,
    /// The value, or the comma-separated items; `None` for [`AlterOpType::Delete`].
    pub value: Option<String>,
}

impl AlterConfigOp {
    /// Sets `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        AlterConfigOp { name: name.into(), op: AlterOpType::Set, value: Some(value.into()) }
    }

    /// Removes the override of `name`.
    pub fn delete(name: impl Into<String>) -> Self {
        AlterConfigOp { name: name.into(), op: AlterOpType::Delete, value: None }
    }

    /// Adds the comma-separated `items` to the list config `name`.
    pub fn append(name: impl Into<String>, items: impl Into<String>) -> Self {
        AlterConfigOp { name: name.into(), op: AlterOpType::Append, value: Some(items.into()) }
    }

    /// Removes the comma-separated `items` from the list config `name`.
    pub fn subtract(name: impl Into<String>, items: impl Into<String>) -> Self {
        AlterConfigOp { name: name.into(), op: AlterOpType::Subtract, value: Some(items.into()) }
    }
}

impl Admin {
    /// Every config of each distinct resource, in the order first named, with its outcome.
    ///
    /// # Errors
    /// Per resource, [`ClientError::Kafka`](crate::ClientError::Kafka) with the broker's
    /// code (UNKNOWN_TOPIC_OR_PARTITION, ...), or the network error of its broker.
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<Vec<(ConfigResource, Result<Vec<ConfigEntry>>)>> {
        self.settle(resources, transient, move |open: Vec<ConfigResource>| async move {
            let routed = open.iter().map(|r| (r.clone(), Ok(r.route()))).collect();
            Ok(self
                .scatter(routed, ApiKey::DescribeConfigs, describe_request, describe_answers)
                .await)
        })
        .await
    }

    /// Replaces the whole override set of `resource` with `configs` (the legacy
    /// AlterConfigs: a key left out loses its override).
    ///
    /// # Errors
    /// [`ClientError::Kafka`](crate::ClientError::Kafka) with the broker's code
    /// (INVALID_CONFIG, UNKNOWN_TOPIC_OR_PARTITION, ...).
    pub async fn alter_configs(
        &self,
        resource: &ConfigResource,
        configs: &[(String, String)],
    ) -> Result<()> {
        let build = |_: i16, _: &[ConfigResource]| {
            let configs = configs
                .iter()
                .map(|(k, v)| {
                    alter_configs_request::AlterableConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_value(Some(StrBytes::from_string(v.clone())))
                })
                .collect();
            let r = alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(resource.kind.wire())
                .with_resource_name(StrBytes::from_string(resource.name.clone()))
                .with_configs(configs);
            Ok(Request::AlterConfigs(AlterConfigsRequest::default().with_resources(vec![r])))
        };
        let read = |addr: &str, _: i16, response: Response, keys: &[ConfigResource]| {
            let Response::AlterConfigs(r) = response else {
                return Err(unexpected(addr, &response));
            };
            let answers: Vec<_> = r
                .responses
                .iter()
                .map(|a| {
                    (a.resource_type, &a.resource_name, a.error_code, a.error_message.as_ref())
                })
                .collect();
            Ok(altered(addr, &answers, keys))
        };
        self.alter_one(resource, ApiKey::AlterConfigs, build, read).await
    }

    /// Applies `ops` to the configs of `resource`, in order, leaving other keys as they are.
    ///
    /// # Errors
    /// [`ClientError::Kafka`](crate::ClientError::Kafka) with the broker's code
    /// (INVALID_CONFIG for a value out of bounds or an APPEND to a non-list config, ...).
    pub async fn incremental_alter_configs(
        &self,
        resource: &ConfigResource,
        ops: &[AlterConfigOp],
    ) -> Result<()> {
        let build = |_: i16, _: &[ConfigResource]| {
            let configs = ops
                .iter()
                .map(|op| {
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(StrBytes::from_string(op.name.clone()))
                        .with_config_operation(op.op.wire())
                        .with_value(op.value.clone().map(StrBytes::from_string))
                })
                .collect();
            let r = incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(resource.kind.wire())
                .with_resource_name(StrBytes::from_string(resource.name.clone()))
                .with_configs(configs);
            let request = IncrementalAlterConfigsRequest::default().with_resources(vec![r]);
            Ok(Request::IncrementalAlterConfigs(request))
        };
        let read = |addr: &str, _: i16, response: Response, keys: &[ConfigResource]| {
            let Response::IncrementalAlterConfigs(r) = response else {
                return Err(unexpected(addr, &response));
            };
            let answers: Vec<_> = r
                .responses
                .iter()
                .map(|a| {
                    (a.resource_type, &a.resource_name, a.error_code, a.error_message.as_ref())
                })
                .collect();
            Ok(altered(addr, &answers, keys))
        };
        self.alter_one(resource, ApiKey::IncrementalAlterConfigs, build, read).await
    }

    /// One alter request for `resource`, to its broker, retried while that is unreachable.
    async fn alter_one(
        &self,
        resource: &ConfigResource,
        api: ApiKey,
        build: impl Fn(i16, &[ConfigResource]) -> Result<Request>,
        read: impl Fn(&str, i16, Response, &[ConfigResource]) -> Result<Vec<Result<()>>>,
    ) -> Result<()> {
        let (build, read) = (&build, &read);
        self.retry(transient, move || async move {
            let routed = vec![(resource.clone(), Ok(resource.route()))];
            let mut outcomes = self.scatter(routed, api, build, read).await;
            outcomes.pop().unwrap_or_else(|| Err(missing("admin", &resource.name)))
        })
        .await
    }
}

fn describe_request(_: i16, resources: &[ConfigResource]) -> Result<Request> {
    let resources = resources
        .iter()
        .map(|r| {
            DescribeConfigsResource::default()
                .with_resource_type(r.kind.wire())
                .with_resource_name(StrBytes::from_string(r.name.clone()))
                .with_configuration_keys(None)
        })
        .collect();
    Ok(Request::DescribeConfigs(DescribeConfigsRequest::default().with_resources(resources)))
}

fn describe_answers(
    addr: &str,
    version: i16,
    response: Response,
    resources: &[ConfigResource],
) -> Result<Vec<Result<Vec<ConfigEntry>>>> {
    let Response::DescribeConfigs(r) = response else { return Err(unexpected(addr, &response)) };
    let by_resource: HashMap<(i8, &str), _> =
        r.results.iter().map(|x| ((x.resource_type, x.resource_name.as_str()), x)).collect();
    Ok(resources
        .iter()
        .map(|res| {
            let x = by_resource
                .get(&(res.kind.wire(), res.name.as_str()))
                .ok_or_else(|| missing(addr, &res.name))?;
            check(
                x.error_code,
                x.error_message.as_ref(),
                format!("describe configs of {}", res.name),
            )?;
            Ok(x.configs.iter().map(|c| entry(c, version)).collect())
        })
        .collect())
}

fn entry(c: &DescribeConfigsResourceResult, version: i16) -> ConfigEntry {
    let source = ConfigSource::from_wire(c.config_source);
    ConfigEntry {
        name: c.name.to_string(),
        value: c.value.as_ref().map(|v| v.to_string()),
        source,
        read_only: c.read_only,
        // v0 reports `is_default`; v1 replaced it with the source.
        is_default: if version == 0 { c.is_default } else { source == ConfigSource::Default },
        sensitive: c.is_sensitive,
    }
}

/// The outcome of each resource from (type, name, error code, message) answers.
fn altered(
    addr: &str,
    answers: &[(i8, &StrBytes, i16, Option<&StrBytes>)],
    resources: &[ConfigResource],
) -> Vec<Result<()>> {
    resources
        .iter()
        .map(|res| {
            let (_, _, code, message) = answers
                .iter()
                .find(|(t, name, ..)| res.is(*t, name))
                .ok_or_else(|| missing(addr, &res.name))?;
            check(*code, *message, format!("alter configs of {}", res.name))
        })
        .collect()
}
