//! What the producer, consumer and admin client share: the configuration, one connection
//! per broker, and the metadata cache with its refresh.
//!
//! Connections are made on first use and replaced when they fail; a broker that refused
//! a connection is not tried again before `reconnect.backoff.ms` (doubling to
//! `reconnect.backoff.max.ms`). Metadata is refreshed for the topics the clients asked
//! about, on demand (an error that says the leader moved) and every `metadata.max.age.ms`;
//! concurrent refreshes share one request.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use sluice_protocol::kafka_protocol::messages::{MetadataRequest, TopicName};
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};
use tokio::sync::watch;

use crate::config::{exponential, CommonConfig};
use crate::error::{ClientError, Result};
use crate::metadata::Metadata;
use crate::metrics::NetworkMetrics;
use crate::net::connection::ConnectionSettings;
use crate::net::Connection;

#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

/// Connections and metadata for one client.
#[derive(Debug)]
pub struct Cluster {
    config: CommonConfig,
    settings: ConnectionSettings,
    auto_create_topics: bool,
    metadata: Mutex<Metadata>,
    interest: Mutex<BTreeSet<String>>,
    connections: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
    backoff: Mutex<HashMap<String, Backoff>>,
    refresh: tokio::sync::Mutex<u64>,
    changed: watch::Sender<u64>,
    version: AtomicU64,
}

impl Cluster {
    /// A cluster reached through `config.bootstrap`; no connection is made yet.
    pub fn new(config: CommonConfig, auto_create_topics: bool) -> Arc<Cluster> {
        let settings = ConnectionSettings {
            client_id: config.client_id.clone(),
            request_timeout: config.request_timeout,
            setup_timeout: config.connection_setup_timeout,
            receive_max_bytes: config.receive_max_bytes,
            metrics: Arc::default(),
        };
        Arc::new(Cluster {
            config,
            settings,
            auto_create_topics,
            metadata: Mutex::new(Metadata::default()),
            interest: Mutex::new(BTreeSet::new()),
            connections: tokio::sync::Mutex::new(HashMap::new()),
            backoff: Mutex::new(HashMap::new()),
            refresh: tokio::sync::Mutex::new(0),
            changed: watch::channel(0).0,
            version: AtomicU64::new(0),
        })
    }

    /// What this client's connections counted.
    pub fn network_metrics(&self) -> &NetworkMetrics {
        &self.settings.metrics
    }

    /// The shared configuration.
    pub fn config(&self) -> &CommonConfig {
        &self.config
    }

    /// Runs `f` on the current metadata.
    pub fn with_metadata<T>(&self, f: impl FnOnce(&Metadata) -> T) -> T {
        f(&self.metadata.lock().expect("lock"))
    }

    /// A number that changes whenever metadata is updated: callers cache what they read
    /// from it under this number.
    pub fn metadata_version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Notified with a new number after every metadata update.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Adds topics to those every refresh asks for.
    pub fn add_interest<'a>(&self, topics: impl IntoIterator<Item = &'a str>) -> bool {
        let mut interest = self.interest.lock().expect("lock");
        let mut added = false;
        for t in topics {
            if !interest.contains(t) {
                interest.insert(t.to_string());
                added = true;
            }
        }
        added
    }

    /// Marks metadata stale, so the next [`Self::refresh_if_stale`] refreshes.
    pub fn invalidate_metadata(&self) {
        self.metadata.lock().expect("lock").invalidate();
    }

    /// Whether metadata is older than `metadata.max.age.ms` or was invalidated.
    pub fn metadata_is_stale(&self, now: Instant) -> bool {
        self.with_metadata(|m| {
            m.updated().is_none_or(|at| now.duration_since(at) >= self.config.metadata_max_age)
        })
    }

    /// Refreshes metadata if it is stale.
    ///
    /// # Errors
    /// As [`Self::refresh_metadata`].
    pub async fn refresh_if_stale(&self) -> Result<()> {
        if self.metadata_is_stale(Instant::now()) {
            self.refresh_metadata().await
        } else {
            Ok(())
        }
    }

    /// Fetches metadata for the topics of interest. Callers that arrive while a refresh
    /// is in flight wait for it instead of sending another.
    ///
    /// # Errors
    /// [`ClientError::Network`] if no broker answers.
    pub async fn refresh_metadata(&self) -> Result<()> {
        let seen = *self.changed.borrow();
        let mut generation = self.refresh.lock().await;
        if *generation > seen {
            return Ok(());
        }
        let topics: Vec<String> = self.interest.lock().expect("lock").iter().cloned().collect();
        self.metadata_request(Some(&topics), self.auto_create_topics).await?;
        *generation += 1;
        self.changed.send_replace(*generation);
        Ok(())
    }

    /// One Metadata request to any broker: for `topics`, or for every topic when `None`.
    ///
    /// # Errors
    /// [`ClientError::Network`] if no broker answers.
    pub async fn metadata_request(
        &self,
        topics: Option<&[String]>,
        auto_create: bool,
    ) -> Result<sluice_protocol::kafka_protocol::messages::MetadataResponse> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::Metadata)?;
        let list = topics.map(|topics| {
            topics
                .iter()
                .map(|t| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                })
                .collect()
        });
        // v0 has no null list: there, an empty one asks for every topic.
        let list = if version == 0 { Some(list.unwrap_or_default()) } else { list };
        let mut request = MetadataRequest::default().with_topics(list);
        if version >= 4 {
            request = request.with_allow_auto_topic_creation(auto_create);
        }
        match conn.call(Request::Metadata(request)).await? {
            Response::Metadata(response) => {
                let mut metadata = self.metadata.lock().expect("lock");
                match topics {
                    Some(_) => metadata.apply(&response, Instant::now()),
                    None => metadata.apply_all_topics(&response, Instant::now()),
                }
                drop(metadata);
                self.version.fetch_add(1, Ordering::Release);
                Ok(response)
            }
            other => Err(unexpected(conn.addr(), &other)),
        }
    }

    /// A connection to broker `node`, made if there is none.
    ///
    /// # Errors
    /// [`ClientError::Network`] if the broker is unknown or cannot be reached.
    pub async fn connection(&self, node: i32) -> Result<Arc<Connection>> {
        let addr = self.with_metadata(|m| m.broker(node).map(|b| b.addr.clone()));
        let Some(addr) = addr else {
            self.invalidate_metadata();
            return Err(ClientError::Network {
                addr: format!("node {node}"),
                reason: "not in metadata".into(),
            });
        };
        self.connection_to(&addr).await
    }

    /// A connection to any broker: a known one first, then the bootstrap list.
    ///
    /// # Errors
    /// [`ClientError::Network`] with the last failure if none can be reached.
    pub async fn any_connection(&self) -> Result<Arc<Connection>> {
        {
            let connections = self.connections.lock().await;
            if let Some(conn) = connections.values().find(|c| !c.is_closed()) {
                return Ok(conn.clone());
            }
        }
        let mut candidates: Vec<String> =
            self.with_metadata(|m| m.brokers().map(|(_, b)| b.addr.clone()).collect());
        candidates.sort();
        candidates.extend(self.config.bootstrap.iter().cloned());
        let mut last = None;
        for addr in candidates {
            match self.connection_to(&addr).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Network {
            addr: "bootstrap.servers".into(),
            reason: "empty".into(),
        }))
    }

    /// A connection to `addr`, made if there is none or the last one failed.
    ///
    /// # Errors
    /// [`ClientError::Network`] while the broker is in its reconnect backoff or cannot be
    /// reached.
    pub async fn connection_to(&self, addr: &str) -> Result<Arc<Connection>> {
        if let Some(conn) = self.connections.lock().await.get(addr) {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
        }
        let until = self.backoff.lock().expect("lock").get(addr).and_then(|b| b.until);
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                tokio::time::sleep(until - now).await;
            }
        }
        match Connection::connect(addr, &self.settings).await {
            Ok(conn) => {
                self.backoff.lock().expect("lock").remove(addr);
                let mut connections = self.connections.lock().await;
                let entry = connections.entry(addr.to_string()).or_insert_with(|| conn.clone());
                if entry.is_closed() {
                    *entry = conn.clone();
                }
                Ok(entry.clone())
            }
            Err(e) => {
                let mut backoff = self.backoff.lock().expect("lock");
                let b = backoff.entry(addr.to_string()).or_default();
                b.failures += 1;
                let wait = exponential(
                    self.config.reconnect_backoff,
                    self.config.reconnect_backoff_max,
                    b.failures,
                    jitter(),
                );
                b.until = Some(Instant::now() + wait);
                Err(e)
            }
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        for (_, conn) in self.connections.lock().await.drain() {
            conn.close();
        }
    }

    /// The wait before retry `attempt` (KIP-580).
    pub fn retry_backoff(&self, attempt: u32) -> Duration {
        self.config.retry_backoff(attempt, jitter())
    }
}

/// A jitter factor in -1..1 from the clock's low bits: enough to spread retries, and no
/// random generator is needed for it.
pub(crate) fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (f64::from(nanos % 2001) / 1000.0) - 1.0
}

/// The error for a response of the wrong API (a broker bug).
pub(crate) fn unexpected(addr: &str, response: &Response) -> ClientError {
    ClientError::Protocol {
        addr: addr.to_string(),
        reason: format!("unexpected {:?} response", response.api_key()),
    }
}

/// The error for an answer that leaves out something it was asked about (a broker bug).
pub(crate) fn missing(addr: &str, what: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol {
        addr: addr.to_string(),
        reason: format!("the answer leaves out {what}"),
    }
}
