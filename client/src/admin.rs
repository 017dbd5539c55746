//! The admin client: topics, configs, consumer groups and their offsets, partitions' log
//! offsets, brokers' log directories, and the cluster itself, over Kafka's admin APIs.
//!
//! Every call has one deadline, `default.api.timeout.ms` from its start. Until then an
//! answer that says the request reached the wrong broker or one not ready yet
//! (NOT_CONTROLLER, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, NOT_LEADER_OR_FOLLOWER,
//! a lost connection, ...; `routing.rs` decides which) is sent again after the KIP-580
//! backoff, to the broker that answers it then. The deadline is checked before each
//! attempt; an attempt already sent is bounded by `request.timeout.ms`.
//!
//! A call about many things (topics, groups, partitions) settles each on its own: one
//! failure does not hide the others, and only what failed retriably is sent again.
//!
//! Requests are built for the version negotiated with the broker that gets them, since
//! kafka-protocol refuses to encode a field that version lacks. The client speaks only the
//! served ranges of [`sluice_protocol::api_key::SUPPORTED_APIS`], so only fields newer than
//! a range's minimum need a version check.
//!
//! Module map: [`topics`], [`configs`], [`groups`] (members' assignments decoded by the
//! consumer's [`protocol`](crate::consumer::protocol)), [`records`] (log offsets of
//! partitions), [`log_dirs`] (brokers' log directories and partition sizes), and
//! `routing.rs` (which broker answers what). The offset requests
//! (FindCoordinator, OffsetFetch, OffsetCommit, ListOffsets) are built and read by the
//! consumer's [`offsets`](crate::consumer::offsets), which the admin shares. Kafka's
//! defaults that kafka-protocol does not share are set explicitly where they matter:
//! ListOffsets' `replica_id` -1 (a consumer, not broker 0), CreatePartitions' null
//! `assignments`.

pub mod configs;
pub mod groups;
pub mod log_dirs;
pub mod records;
mod routing;
pub mod topics;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::kafka_protocol::messages::DescribeClusterRequest;
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};

use crate::cluster::{unexpected, Cluster};
use crate::config::{AdminConfig, ClientConfig};
use crate::error::{check, ClientError, Result};
pub use configs::{
    AlterConfigOp, AlterOpType, ConfigEntry, ConfigResource, ConfigResourceKind, ConfigSource,
};
pub use groups::{
    GroupDescription, GroupListing, GroupState, MemberAssignment, MemberDescription,
    OffsetAndMetadata,
};
pub use log_dirs::{LogDirDescription, ReplicaInfo};
pub use records::{ListedOffset, OffsetSpec};
use routing::transient;
pub use topics::{NewTopic, PartitionDescription, TopicDescription, TopicListing};

/// Which failures are worth another attempt: a property of the call, see [`routing`].
type Retriable = fn(&ClientError) -> bool;

/// The cluster as [`Admin::describe_cluster`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id (none from brokers before Metadata v2).
    pub cluster_id: Option<String>,
    /// The controller's node id, if the cluster reports one.
    pub controller: Option<i32>,
    /// Every broker, by node id.
    pub brokers: Vec<BrokerDescription>,
}

/// One broker of [`ClusterDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerDescription {
    /// Its node id.
    pub node_id: i32,
    /// `host:port` where clients reach it.
    pub addr: String,
    /// Its rack, if configured.
    pub rack: Option<String>,
}

/// An asynchronous Kafka admin client.
///
/// Its calls must run inside a tokio runtime (connections are tasks of the runtime).
#[derive(Debug)]
pub struct Admin {
    cluster: Arc<Cluster>,
    api_timeout: Duration,
    closed: AtomicBool,
}

impl Admin {
    /// An admin client for the cluster `config` names; no connection is made yet.
    ///
    /// # Errors
    /// [`ClientError::Config`] naming the first property that is wrong.
    pub fn new(config: &ClientConfig) -> Result<Admin> {
        Ok(Self::from_config(AdminConfig::new(config)?))
    }

    /// An admin client from a typed configuration.
    pub fn from_config(config: AdminConfig) -> Admin {
        Admin {
            // Admin calls never create topics as a side effect of asking about them.
            cluster: Cluster::new(config.common, false),
            api_timeout: config.default_api_timeout,
            closed: AtomicBool::new(false),
        }
    }

    /// Closes every connection; later calls fail with [`ClientError::Closed`].
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.cluster.close().await;
    }

    /// The cluster id, controller and brokers: DescribeCluster (KIP-700) where the broker
    /// serves it, else Metadata.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] with the broker's error, or a network error once the
    /// deadline has passed.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        self.retry(transient, move || async move {
            let conn = self.cluster.any_connection().await?;
            if conn.versions().pick(ApiKey::DescribeCluster).is_none() {
                let m = self.cluster.metadata_request(Some(&[]), false).await?;
                let brokers = m
                    .brokers
                    .iter()
                    .map(|b| broker(b.node_id.0, &b.host, b.port, b.rack.as_ref()))
                    .collect();
                return Ok(cluster(
                    m.cluster_id.map(|c| c.to_string()),
                    m.controller_id.0,
                    brokers,
                ));
            }
            let request = Request::DescribeCluster(DescribeClusterRequest::default());
            let r = match conn.call(request).await? {
                Response::DescribeCluster(r) => r,
                other => return Err(unexpected(conn.addr(), &other)),
            };
            check(r.error_code, r.error_message.as_ref(), "describe cluster")?;
            let brokers = r
                .brokers
                .iter()
                .map(|b| broker(b.broker_id.0, &b.host, b.port, b.rack.as_ref()))
                .collect();
            Ok(cluster(Some(r.cluster_id.to_string()), r.controller_id.0, brokers))
        })
        .await
    }

    /// The request timeout brokers are asked to keep (`timeout_ms` fields).
    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.cluster.config().request_timeout.as_millis()).unwrap_or(i32::MAX)
    }

    /// Settles each distinct key of `keys` (in the order first named): `round` is given the
    /// keys still open and returns one outcome per key, in their order. A key whose outcome
    /// is an error that `retriable` accepts is open again next round, after the backoff,
    /// while the deadline allows; when it no longer does, the key keeps that error.
    ///
    /// A round that fails as a whole counts as that failure for each of its keys, except
    /// that the call fails with it when no key has an outcome yet.
    ///
    /// `round` is a closure returning a future rather than an async closure: the futures
    /// of async closures taking a borrowed argument are not `Send` for every lifetime
    /// (rust-lang/rust#110338), and a caller must be able to spawn an admin call.
    async fn settle<K, T, F, Fut>(
        &self,
        keys: &[K],
        retriable: Retriable,
        mut round: F,
    ) -> Result<Vec<(K, Result<T>)>>
    where
        K: Ord + Clone,
        F: FnMut(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<Result<T>>>>,
    {
        if self.closed.load(Ordering::Acquire) {
            return Err(ClientError::Closed);
        }
        let deadline = Instant::now() + self.api_timeout;
        let mut seen = BTreeSet::new();
        let order: Vec<K> = keys.iter().filter(|k| seen.insert(*k)).cloned().collect();
        let mut open = order.clone();
        let mut settled: BTreeMap<K, Result<T>> = BTreeMap::new();
        let mut attempt = 0;
        while !open.is_empty() {
            attempt += 1;
            // The keys to try again, each with the error it last failed with.
            let mut again: Vec<(K, ClientError)> = Vec::new();
            let mut whole = false;
            match round(open.clone()).await {
                Ok(outcomes) => {
                    let mut outcomes = outcomes.into_iter();
                    for key in open {
                        match outcomes.next().unwrap_or_else(|| Err(no_outcome())) {
                            Err(e) if retriable(&e) => again.push((key, e)),
                            outcome => {
                                settled.insert(key, outcome);
                            }
                        }
                    }
                }
                Err(e) if retriable(&e) => {
                    whole = true;
                    again = open.into_iter().map(|k| (k, e.clone())).collect();
                }
                Err(e) if settled.is_empty() => return Err(e),
                Err(e) => settled.extend(open.into_iter().map(|k| (k, Err(e.clone())))),
            }
            let Some((_, last)) = again.last() else { break };
            let wait = self.cluster.retry_backoff(attempt);
            if Instant::now() + wait >= deadline {
                if whole && settled.is_empty() {
                    return Err(last.clone());
                }
                settled.extend(again.into_iter().map(|(k, e)| (k, Err(e))));
                break;
            }
            if again.iter().any(|(_, e)| routing::moved(e)) {
                self.cluster.invalidate_metadata();
            }
            tracing::debug!(error = %last, attempt, ?wait, "admin call retries");
            open = again.into_iter().map(|(k, _)| k).collect();
            tokio::time::sleep(wait).await;
        }
        Ok(order
            .into_iter()
            .map(|k| {
                let outcome = settled.remove(&k).unwrap_or_else(|| Err(no_outcome()));
                (k, outcome)
            })
            .collect())
    }

    /// Runs `attempt` until it succeeds, fails with an error `retriable` refuses, or the
    /// deadline allows no further attempt.
    async fn retry<T, F, Fut>(&self, retriable: Retriable, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let round = |_| {
            let attempt = attempt();
            async move { Ok(vec![attempt.await]) }
        };
        let mut outcomes = self.settle(&[()], retriable, round).await?;
        outcomes.pop().map_or_else(|| Err(no_outcome()), |(_, outcome)| outcome)
    }
}

/// A key left without an outcome: a bug in a round, reported rather than panicking.
fn no_outcome() -> ClientError {
    ClientError::Protocol {
        addr: "admin".into(),
        reason: "a request left an item unanswered".into(),
    }
}

fn broker(node_id: i32, host: &StrBytes, port: i32, rack: Option<&StrBytes>) -> BrokerDescription {
    BrokerDescription {
        node_id,
        addr: format!("{}:{port}", host.as_str()),
        rack: rack.map(|r| r.to_string()),
    }
}

fn cluster(
    cluster_id: Option<String>,
    controller: i32,
    mut brokers: Vec<BrokerDescription>,
) -> ClusterDescription {
    brokers.sort_by_key(|b| b.node_id);
    ClusterDescription { cluster_id, controller: (controller >= 0).then_some(controller), brokers }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use sluice_protocol::error_code::ErrorCode;

    use super::*;

    fn admin(api_timeout_ms: &str) -> Admin {
        let config = ClientConfig::new()
            .with("bootstrap.servers", "127.0.0.1:9")
            .with("retry.backoff.ms", "1")
            .with("retry.backoff.max.ms", "2")
            .with("default.api.timeout.ms", api_timeout_ms);
        Admin::new(&config).unwrap()
    }

    fn not_coordinator() -> ClientError {
        ClientError::kafka(ErrorCode::NOT_COORDINATOR, None, "test")
    }

    #[tokio::test]
    async fn settle_retries_only_what_failed_retriably_and_keeps_the_order() {
        let admin = admin("10000");
        let rounds = Mutex::new(Vec::new());
        let keys = ["a", "b", "c", "a"].map(String::from);
        let log = &rounds;
        let out = admin
            .settle(&keys, routing::coordinator_moved, move |open: Vec<String>| async move {
                let mut rounds = log.lock().unwrap();
                rounds.push(open.to_vec());
                let second_try = rounds.len() > 1;
                Ok(open
                    .iter()
                    .map(|k| match k.as_str() {
                        "b" if !second_try => Err(not_coordinator()),
                        "c" => Err(ClientError::kafka(ErrorCode::GROUP_ID_NOT_FOUND, None, "c")),
                        k => Ok(k.to_uppercase()),
                    })
                    .collect())
            })
            .await
            .unwrap();
        let rounds = rounds.into_inner().unwrap();
        assert_eq!(rounds, vec![vec!["a", "b", "c"], vec!["b"]], "a key named twice is asked once");
        let summary: Vec<(&str, Result<&str, Option<ErrorCode>>)> = out
            .iter()
            .map(|(k, r)| (k.as_str(), r.as_deref().map_err(ClientError::code)))
            .collect();
        assert_eq!(
            summary,
            vec![("a", Ok("A")), ("b", Ok("B")), ("c", Err(Some(ErrorCode::GROUP_ID_NOT_FOUND)))]
        );
    }

    #[tokio::test]
    async fn settle_gives_up_at_the_deadline_with_each_keys_last_error() {
        let admin = admin("100");
        let start = Instant::now();
        let keys = ["a", "b"].map(String::from);
        let out = admin
            .settle(&keys, routing::coordinator_moved, |open: Vec<String>| async move {
                Ok(open
                    .iter()
                    .map(|k| if k == "a" { Ok(()) } else { Err(not_coordinator()) })
                    .collect())
            })
            .await
            .unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
        assert!(out[0].1.is_ok());
        assert_eq!(out[1].1.as_ref().unwrap_err().code(), Some(ErrorCode::NOT_COORDINATOR));
    }

    #[tokio::test]
    async fn a_round_failing_as_a_whole_fails_the_call_when_nothing_settled() {
        let admin = admin("50");
        let lost = || ClientError::Network { addr: "b:1".into(), reason: "refused".into() };
        let keys = ["a", "b"].map(String::from);
        let attempts = Mutex::new(0);
        let counter = &attempts;
        let out: Result<Vec<(String, Result<()>)>> = admin
            .settle(&keys, routing::transient, move |_: Vec<String>| async move {
                *counter.lock().unwrap() += 1;
                Err(lost())
            })
            .await;
        assert_eq!(out.unwrap_err(), lost());
        assert!(*attempts.lock().unwrap() > 1, "a transient failure is retried");
        let refused =
            admin.retry(routing::transient, || async { Err::<(), _>(not_coordinator()) }).await;
        assert_eq!(refused.unwrap_err(), not_coordinator(), "not retriable here: returned at once");
    }

    /// Compiles only if every call's future can be spawned on a multi-threaded runtime.
    #[test]
    fn every_call_is_send() {
        fn spawnable<F: Future + Send>(_: F) {}
        let admin = admin("1");
        let (names, tps) = (vec!["t".to_string()], vec![crate::TopicPartition::new("t", 0)]);
        let topic = ConfigResource::topic("t");
        spawnable(admin.create_topics(&[NewTopic::new("t")], false));
        spawnable(admin.delete_topics(&names));
        spawnable(admin.list_topics(false));
        spawnable(admin.describe_topics(&names));
        spawnable(admin.create_partitions(&[("t".into(), 2)], false));
        spawnable(admin.describe_configs(std::slice::from_ref(&topic)));
        spawnable(admin.alter_configs(&topic, &[]));
        spawnable(admin.incremental_alter_configs(&topic, &[]));
        spawnable(admin.list_groups());
        spawnable(admin.describe_groups(&names));
        spawnable(admin.delete_groups(&names));
        spawnable(admin.list_consumer_group_offsets("g", None));
        spawnable(admin.alter_consumer_group_offsets("g", &[]));
        spawnable(admin.delete_consumer_group_offsets("g", &tps));
        spawnable(admin.list_offsets(&[]));
        spawnable(admin.delete_records(&[]));
        spawnable(admin.describe_cluster());
        spawnable(admin.describe_log_dirs(&[0], Some(&tps)));
    }

    #[tokio::test]
    async fn a_closed_admin_refuses_calls() {
        let admin = admin("50");
        admin.close().await;
        let out = admin.retry(routing::transient, || async { Ok(()) }).await;
        assert_eq!(out, Err(ClientError::Closed));
    }
}
