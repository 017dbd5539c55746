//! Which broker answers which admin request, decided here and nowhere else:
//!
//! | requests | answered by |
//! |---|---|
//! | CreateTopics, DeleteTopics, CreatePartitions | the controller metadata names (any broker before it names one) |
//! | DescribeGroups, DeleteGroups, OffsetFetch, OffsetCommit, OffsetDelete | the group's coordinator, from FindCoordinator |
//! | ListOffsets, DeleteRecords | each partition's leader, from metadata fetched for that attempt |
//! | DescribeConfigs, AlterConfigs, IncrementalAlterConfigs of a broker; DescribeLogDirs | that broker |
//! | ListGroups | every broker in metadata |
//! | Metadata, DescribeCluster, FindCoordinator, the other config resources | any broker |
//!
//! and which failures mean the request went to the wrong broker or one not ready yet, so
//! that another attempt, routed afresh, may succeed (the `*_moved` predicates). Requests to
//! several brokers are all sent before any answer is awaited ([`Admin::scatter`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_protocol::api_key::ApiKey;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::messages::{Request, Response};

use super::Admin;
use crate::cluster::missing;
use crate::consumer::offsets::find_coordinators;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;
use crate::net::connection::PendingResponse;
use crate::net::Connection;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Route {
    /// Any broker that can be reached.
    Any,
    /// The controller.
    Controller,
    /// The broker with this node id.
    Node(i32),
    /// The broker at this `host:port` (a coordinator, as FindCoordinator names it).
    Addr(String),
}

/// The codes of a coordinator that moved, or is not ready.
const COORDINATOR_MOVED: [ErrorCode; 3] = [
    ErrorCode::NOT_COORDINATOR,
    ErrorCode::COORDINATOR_LOAD_IN_PROGRESS,
    ErrorCode::COORDINATOR_NOT_AVAILABLE,
];

/// A lost connection or an unanswered request: worth another attempt anywhere.
pub(super) fn transient(e: &ClientError) -> bool {
    matches!(e, ClientError::Network { .. } | ClientError::RequestTimeout { .. })
}

/// Transient, or the group's coordinator moved or is loading.
pub(super) fn coordinator_moved(e: &ClientError) -> bool {
    transient(e) || e.code().is_some_and(|c| COORDINATOR_MOVED.contains(&c))
}

/// Transient, or the broker asked is no longer the controller.
pub(super) fn controller_moved(e: &ClientError) -> bool {
    transient(e) || e.code() == Some(ErrorCode::NOT_CONTROLLER)
}

/// Any retriable failure: a leader that moved, an epoch being fenced, a replica catching
/// up. Safe for leader requests because each attempt looks the leaders up again, and a
/// topic that metadata does not know fails without retries.
pub(super) fn leader_moved(e: &ClientError) -> bool {
    e.is_retriable()
}

/// Whether the cached metadata may name the wrong broker after `e`.
pub(super) fn moved(e: &ClientError) -> bool {
    e.needs_metadata_refresh() || e.code() == Some(ErrorCode::NOT_CONTROLLER)
}

impl Admin {
    /// A connection to the broker `route` names.
    ///
    /// # Errors
    /// [`ClientError::Network`] if it cannot be reached or is not in metadata.
    pub(super) async fn connect(&self, route: &Route) -> Result<Arc<Connection>> {
        match route {
            Route::Any => self.cluster.any_connection().await,
            Route::Addr(addr) => self.cluster.connection_to(addr).await,
            Route::Node(node) => {
                if self.cluster.with_metadata(|m| m.broker(*node).is_none()) {
                    self.cluster.metadata_request(Some(&[]), false).await?;
                }
                self.cluster.connection(*node).await
            }
            Route::Controller => {
                let known =
                    self.cluster.with_metadata(|m| m.updated().is_some().then(|| m.controller()));
                let controller = match known {
                    Some(c) => c,
                    None => self.cluster.metadata_request(Some(&[]), false).await?.controller_id.0,
                };
                if controller < 0 {
                    self.cluster.any_connection().await
                } else {
                    self.cluster.connection(controller).await
                }
            }
        }
    }

    /// The node ids of every broker, from fresh metadata.
    ///
    /// # Errors
    /// A network error if no broker answers.
    pub(super) async fn brokers(&self) -> Result<Vec<i32>> {
        let m = self.cluster.metadata_request(Some(&[]), false).await?;
        Ok(m.brokers.iter().map(|b| b.node_id.0).collect())
    }

    /// The coordinator of each group, in their order.
    ///
    /// # Errors
    /// A network error if no broker answers; a group's own error is its outcome.
    pub(super) async fn coordinators(&self, groups: &[String]) -> Result<Vec<Result<Route>>> {
        let conn = self.cluster.any_connection().await?;
        let found = find_coordinators(&conn, groups).await?;
        Ok(found.into_iter().map(|addr| addr.map(Route::Addr)).collect())
    }

    /// The coordinator of one group.
    ///
    /// # Errors
    /// As [`Self::coordinators`], and the group's error.
    pub(super) async fn coordinator(&self, group: &str) -> Result<Route> {
        let mut routes = self.coordinators(&[group.to_string()]).await?;
        routes.pop().unwrap_or_else(|| Err(missing("coordinator", group)))
    }

    /// The leader of each partition, in their order, from metadata fetched now. A topic
    /// metadata does not know is [`ClientError::UnknownTopic`], a partition past its count
    /// [`ClientError::UnknownPartition`]; neither is retried.
    ///
    /// # Errors
    /// A network error if no broker answers.
    pub(super) async fn leaders(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Result<Route>>> {
        let mut topics: Vec<String> = partitions.iter().map(|tp| tp.topic.to_string()).collect();
        topics.sort_unstable();
        topics.dedup();
        self.cluster.metadata_request(Some(topics.as_slice()), false).await?;
        Ok(self.cluster.with_metadata(|m| {
            partitions
                .iter()
                .map(|TopicPartition { topic, partition }| {
                    let unknown = || ClientError::UnknownTopic { topic: topic.to_string() };
                    match m.topic_error(topic) {
                        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION) => return Err(unknown()),
                        Some(code) => {
                            return Err(ClientError::kafka(
                                code,
                                None,
                                format!("metadata of {topic}"),
                            ))
                        }
                        None => {}
                    }
                    let count = m.partition_count(topic).ok_or_else(unknown)?;
                    if *partition < 0 || *partition as u32 >= count {
                        return Err(ClientError::UnknownPartition {
                            topic: topic.to_string(),
                            partition: *partition,
                            partitions: count,
                        });
                    }
                    m.leader(topic, *partition).map(Route::Node).ok_or_else(|| {
                        ClientError::kafka(
                            ErrorCode::LEADER_NOT_AVAILABLE,
                            None,
                            format!("leader of {topic}-{partition}"),
                        )
                    })
                })
                .collect()
        }))
    }

    /// One request to the broker `route` names, built by `build` for its version of `api`;
    /// returns the broker's address, the version and the answer.
    ///
    /// # Errors
    /// A network error, [`ClientError::UnsupportedVersion`], or what `build` fails with.
    pub(super) async fn call(
        &self,
        route: &Route,
        api: ApiKey,
        build: impl FnOnce(i16) -> Result<Request>,
    ) -> Result<(String, i16, Response)> {
        let conn = self.connect(route).await?;
        let version = conn.version(api)?;
        let response = conn.send(version, &build(version)?).await?.wait().await?;
        Ok((conn.addr().to_string(), version, response))
    }

    /// Sends each routed key's request to its broker: one request per broker, built by
    /// `build` for that broker's version of `api` from its keys, all sent before any
    /// answer is awaited. `read` turns an answer into one outcome per key of its request,
    /// in their order. Returns one outcome per key, in the order of `routed`; a key whose
    /// route, connection or request failed has that error.
    pub(super) async fn scatter<K: Clone, T>(
        &self,
        routed: Vec<(K, Result<Route>)>,
        api: ApiKey,
        build: impl Fn(i16, &[K]) -> Result<Request>,
        read: impl Fn(&str, i16, Response, &[K]) -> Result<Vec<Result<T>>>,
    ) -> Vec<Result<T>> {
        let mut out: Vec<Option<Result<T>>> = (0..routed.len()).map(|_| None).collect();
        let mut batches: BTreeMap<Route, (Vec<usize>, Vec<K>)> = BTreeMap::new();
        for (i, (key, route)) in routed.into_iter().enumerate() {
            match route {
                Ok(route) => {
                    let (indexes, keys) = batches.entry(route).or_default();
                    indexes.push(i);
                    keys.push(key);
                }
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        let mut sent: Vec<InFlight<K>> = Vec::new();
        for (route, (indexes, keys)) in batches {
            let attempt = async {
                let conn = self.connect(&route).await?;
                let version = conn.version(api)?;
                let pending = conn.send(version, &build(version, &keys)?).await?;
                Ok::<_, ClientError>((conn.addr().to_string(), version, pending))
            };
            match attempt.await {
                Ok((addr, version, pending)) => {
                    sent.push(InFlight { indexes, keys, addr, version, pending })
                }
                Err(e) => indexes.iter().for_each(|&i| out[i] = Some(Err(e.clone()))),
            }
        }
        for f in sent {
            match f.pending.wait().await.and_then(|r| read(&f.addr, f.version, r, &f.keys)) {
                Ok(outcomes) => {
                    for (i, outcome) in f.indexes.iter().zip(outcomes) {
                        out[*i] = Some(outcome);
                    }
                }
                Err(e) => f.indexes.iter().for_each(|&i| out[i] = Some(Err(e.clone()))),
            }
        }
        out.into_iter().map(|o| o.unwrap_or_else(|| Err(super::no_outcome()))).collect()
    }
}

/// A request of [`Admin::scatter`] sent and not yet answered.
struct InFlight<K> {
    /// Where its keys are in the caller's list.
    indexes: Vec<usize>,
    keys: Vec<K>,
    addr: String,
    version: i16,
    pending: PendingResponse,
}
