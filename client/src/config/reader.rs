//! Typed reads of a validated [`ClientConfig`]: each falls back to the table's default,
//! so a typed config never sees an unset numeric property.

use std::time::Duration;

use super::{invalid, property, ClientConfig, CommonConfig};
use crate::error::Result;

/// Typed access to validated properties, falling back to the table's defaults.
pub(super) struct Reader<'a> {
    pub(super) config: &'a ClientConfig,
}

impl Reader<'_> {
    pub(super) fn raw(&self, name: &str) -> Option<&str> {
        let prop = property(name).expect("invariant: the typed configs read known properties");
        self.config.get(name).map(str::trim).or(prop.default)
    }

    pub(super) fn int(&self, name: &str) -> i64 {
        self.raw(name).and_then(|v| v.parse().ok()).expect("invariant: numeric rows have defaults")
    }

    pub(super) fn ms(&self, name: &str) -> Duration {
        Duration::from_millis(self.int(name).max(0) as u64)
    }

    pub(super) fn bool(&self, name: &str) -> bool {
        self.raw(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    pub(super) fn string(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|v| !v.is_empty()).map(str::to_string)
    }

    pub(super) fn common(&self) -> Result<CommonConfig> {
        let servers = self.string("bootstrap.servers").unwrap_or_default();
        let bootstrap: Vec<String> =
            servers.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        if bootstrap.is_empty() {
            return Err(invalid("bootstrap.servers", &servers, "at least one host:port is needed"));
        }
        for server in &bootstrap {
            let ok = server
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(invalid("bootstrap.servers", server, "each entry is host:port"));
            }
        }
        Ok(CommonConfig {
            bootstrap,
            client_id: self.string("client.id").unwrap_or_default(),
            request_timeout: self.ms("request.timeout.ms"),
            metadata_max_age: self.ms("metadata.max.age.ms"),
            reconnect_backoff: self.ms("reconnect.backoff.ms"),
            reconnect_backoff_max: self.ms("reconnect.backoff.max.ms"),
            retry_backoff: self.ms("retry.backoff.ms"),
            retry_backoff_max: self.ms("retry.backoff.max.ms"),
            connection_setup_timeout: self.ms("socket.connection.setup.timeout.ms"),
            receive_max_bytes: self.int("receive.message.max.bytes") as usize,
        })
    }
}
