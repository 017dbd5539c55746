//! Configuration by the Java client's property names, in two stages: a [`ClientConfig`]
//! holds raw `key=value` strings (from pairs or a properties file); `ProducerConfig::new`,
//! `ConsumerConfig::new` and `AdminConfig::new` validate them into typed structs.
//!
//! Every property the client knows is one row of [`PROPERTIES`]: its name, type, bounds,
//! default, which clients read it and its documentation. Validation, defaults and the
//! typed structs all read that table, so a value cannot be accepted by one client and
//! refused by another. As the Java client does, a property of another client is ignored
//! (a properties file may be shared); a name no client knows is refused, since it is most
//! often a typo that would otherwise be silently dropped.
//!
//! Files: `table.rs` the rows and the check of a value against one; `reader.rs` typed
//! reads with the defaults; `common.rs` what every client reads; `producer.rs`,
//! `consumer.rs` and `admin.rs` each client's typed config and its cross-property rules.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{ClientError, Result};

mod admin;
mod common;
mod consumer;
mod producer;
mod reader;
mod table;

pub use admin::AdminConfig;
pub use common::{exponential, CommonConfig};
pub use consumer::{ConsumerConfig, OffsetReset};
pub use producer::{Acks, ProducerConfig};
pub use table::{property, Kind, Property, Roles, PROPERTIES};

use reader::Reader;
use table::check;

/// Raw `key=value` properties, as the Java client takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    values: BTreeMap<String, String>,
}

impl ClientConfig {
    /// No properties set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value` (checked when a client is built).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.values.insert(name.into(), value.into());
        self
    }

    /// As [`Self::set`], by value, for chaining.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    /// The properties of a Java-style properties file: `key=value` or `key: value` lines,
    /// `#` and `!` comments.
    ///
    /// # Errors
    /// [`ClientError::Config`] if the file cannot be read or a line has no separator.
    pub fn from_properties_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ClientError::Config {
            name: "properties file".into(),
            value: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_properties(&text)
    }

    /// As [`Self::from_properties_file`], from the file's text.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a line without `=` or `:`.
    pub fn from_properties(text: &str) -> Result<Self> {
        let mut config = ClientConfig::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some(at) = line.find(['=', ':']) else {
                return Err(ClientError::Config {
                    name: line.into(),
                    value: String::new(),
                    reason: "a properties line is key=value".into(),
                });
            };
            config.set(line[..at].trim(), line[at + 1..].trim());
        }
        Ok(config)
    }

    /// The raw value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every property set, by name (to lay one config over another).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Checks every set property against the table and returns a reader for `role`.
    fn validate(&self, role: fn(&Roles) -> bool) -> Result<Reader<'_>> {
        for (name, value) in &self.values {
            let Some(prop) = property(name) else {
                return Err(invalid(name, value, "unknown property"));
            };
            if role(&prop.roles) {
                check(prop, value)?;
            }
        }
        Ok(Reader { config: self })
    }
}

fn invalid(name: &str, value: &str, reason: impl Into<String>) -> ClientError {
    ClientError::Config { name: name.into(), value: value.into(), reason: reason.into() }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn base() -> ClientConfig {
        ClientConfig::new().with("bootstrap.servers", "127.0.0.1:9092")
    }

    #[test]
    fn defaults_are_the_java_clients() {
        let c = ProducerConfig::new(&base()).unwrap();
        assert_eq!((c.batch_size, c.linger, c.acks), (16384, Duration::from_millis(5), Acks::All));
        assert!(c.idempotence);
        assert_eq!((c.max_in_flight, c.buffer_memory), (5, 32 << 20));
        let c = ConsumerConfig::new(&base()).unwrap();
        assert_eq!((c.max_poll_records, c.fetch_max_bytes), (500, 52428800));
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        let c = AdminConfig::new(&base()).unwrap();
        assert_eq!(c.default_api_timeout, Duration::from_secs(60));
    }

    #[test]
    fn refuses_bad_values_with_the_property_named() {
        for (name, value) in [
            ("batch.size", "-1"),
            ("batch.size", "2147483648"),
            ("linger.ms", "soon"),
            ("acks", "2"),
            ("compression.type", "brotli"),
            ("enable.idempotence", "yes"),
            ("compression.zstd.level", "23"),
            ("compression.gzip.level", "10"),
            ("compression.gzip.level", "0"),
            ("no.such.property", "1"),
        ] {
            let err = ProducerConfig::new(&base().with(name, value)).unwrap_err();
            assert!(
                matches!(&err, ClientError::Config { name: n, .. } if n == name),
                "{name}={value}: {err}"
            );
            // A known property is refused for its value, not as a typo.
            let known = name != "no.such.property";
            assert_eq!(known, !err.to_string().contains("unknown property"), "{name}: {err}");
        }
        assert!(
            ProducerConfig::new(&ClientConfig::new()).is_err(),
            "bootstrap.servers is required"
        );
        assert!(
            ProducerConfig::new(&ClientConfig::new().with("bootstrap.servers", "nohost")).is_err()
        );
    }

    #[test]
    fn idempotence_conflicts_as_in_the_java_client() {
        let c = ProducerConfig::new(&base().with("acks", "1")).unwrap();
        assert!(!c.idempotence, "a default idempotence gives way to acks=1");
        let explicit = base().with("acks", "1").with("enable.idempotence", "true");
        assert!(ProducerConfig::new(&explicit).is_err());
    }

    #[test]
    fn other_clients_properties_are_ignored_unknown_ones_refused() {
        assert!(ProducerConfig::new(&base().with("group.id", "g")).is_ok());
        assert!(ConsumerConfig::new(&base().with("linger.ms", "oops")).is_ok());
        assert!(ConsumerConfig::new(&base().with("group.idd", "g")).is_err());
    }

    #[test]
    fn properties_files_parse() {
        let c = ClientConfig::from_properties("# c\nbootstrap.servers = a:1,b:2\n! x\nacks: 1\n")
            .unwrap();
        assert_eq!(c.get("bootstrap.servers"), Some("a:1,b:2"));
        assert_eq!(c.get("acks"), Some("1"));
        assert_eq!(ProducerConfig::new(&c).unwrap().common.bootstrap, vec!["a:1", "b:2"]);
        let listed: Vec<(&str, &str)> = c.iter().collect();
        assert_eq!(listed, [("acks", "1"), ("bootstrap.servers", "a:1,b:2")]);
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let (b, m) = (Duration::from_millis(100), Duration::from_millis(1000));
        assert_eq!(exponential(b, m, 1, 0.0), b);
        assert_eq!(exponential(b, m, 3, 0.0), Duration::from_millis(400));
        assert_eq!(exponential(b, m, 30, 0.0), m);
        assert_eq!(exponential(b, m, 1, 1.0), Duration::from_millis(120));
    }
}
