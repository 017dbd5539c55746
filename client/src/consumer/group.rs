//! Group membership with the classic consumer protocol: JoinGroup, SyncGroup (the leader
//! runs the assignor), heartbeats in the background, LeaveGroup.
//!
//! Invariants:
//! - Only `poll` (and `close`) change the assignment, so the application's view moves
//!   only between polls; the heartbeat task just raises flags (rejoin, lost) that the next
//!   poll acts on.
//! - Eager assignors: everything owned is revoked before joining. Cooperative
//!   (KIP-429): only what the new assignment drops is revoked, after SyncGroup, and then
//!   the member rejoins at once so those partitions reach their new owner.
//! - Before a revoke, with `enable.auto.commit`, the positions of the revoked partitions
//!   are committed, so the next owner starts exactly where this one stopped.
//! - A member that does not poll within `max.poll.interval.ms` leaves the group itself
//!   (as Java's heartbeat thread does) and its partitions count as lost.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_protocol::api_key::ApiKey;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use sluice_protocol::kafka_protocol::messages::leave_group_request::MemberIdentity;
use sluice_protocol::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use sluice_protocol::kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    SyncGroupRequest,
};
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};
use tokio::sync::Notify;

use super::assignor::{rebalance_changes, Assignor, RebalanceChanges, RebalanceProtocol};
use super::offsets::{self, Committer};
use super::protocol::{Assignment, Subscription, TopicPartitions};
use crate::cluster::{unexpected, Cluster};
use crate::config::ConsumerConfig;
use crate::error::{ClientError, Result};
use crate::metadata::TopicPartition;
use crate::net::Connection;

/// The subscription and assignment version written: Kafka 3.x's, which older readers
/// read too (they stop at the fields they know).
const PROTOCOL_VERSION: i16 = 3;
/// Added to the rebalance timeout for a JoinGroup's answer, as the Java client does.
const JOIN_SLACK: Duration = Duration::from_secs(5);

/// A boxed future, for the listener's async callbacks.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Callbacks around a rebalance. They run inside `poll` with the consumer at hand, so
/// `on_partitions_revoked` can commit (and await it) before the partitions move.
pub trait RebalanceListener: Send {
    /// `partitions` are about to go to another member.
    fn on_partitions_revoked<'a>(
        &'a mut self,
        consumer: &'a mut super::Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()>;

    /// `partitions` are now this member's.
    fn on_partitions_assigned<'a>(
        &'a mut self,
        consumer: &'a mut super::Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()>;

    /// `partitions` were taken from this member without a revoke (it was expelled);
    /// another member may already own them, so committing is pointless. By default the
    /// same as a revoke, as in Java.
    fn on_partitions_lost<'a>(
        &'a mut self,
        consumer: &'a mut super::Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        self.on_partitions_revoked(consumer, partitions)
    }
}

/// Flags the heartbeat task raises for the next poll.
#[derive(Debug, Default)]
pub struct Signals {
    /// The coordinator started a rebalance: join again.
    pub rejoin: AtomicBool,
    /// The member is no longer in the generation: its partitions are lost.
    pub lost: AtomicBool,
    /// The member id is unknown to the coordinator: join with an empty one.
    pub reset_member_id: AtomicBool,
    /// Woken when a flag is raised, so a waiting poll notices.
    pub notify: Notify,
    /// When the application last polled.
    pub last_poll: Mutex<Option<Instant>>,
}

/// The member's state in its group.
#[derive(Debug)]
pub struct Member {
    /// The group id.
    pub group: String,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// The member id the coordinator gave; empty before the first join.
    pub member_id: String,
    /// The generation joined; -1 before.
    pub generation: i32,
    /// Topics subscribed to (for a pattern: the topics it matched at the last check).
    pub topics: Vec<String>,
    /// A subscription by pattern: topics whose whole name matches, checked again every
    /// `metadata.max.age.ms`, as the Java consumer does.
    pub pattern: Option<regex::Regex>,
    /// When the pattern is next matched against the cluster's topics.
    pub next_pattern_check: Option<Instant>,
    /// Partitions owned in `generation`.
    pub owned: Vec<(String, i32)>,
    /// The assignors, in preference order.
    pub assignors: Vec<Box<dyn Assignor>>,
    /// The protocol the group chose.
    pub chosen: Option<RebalanceProtocol>,
    /// A join is needed before the next fetch.
    pub needs_join: bool,
    /// Partition counts of the subscribed topics at the last assignment.
    pub assigned_metadata: BTreeMap<String, u32>,
    /// Shared with the heartbeat task.
    pub signals: Arc<Signals>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

impl Member {
    /// A member of `config`'s group subscribing to `topics`; it joins on the next poll.
    ///
    /// # Errors
    /// [`ClientError::Config`] without `group.id` or with an unknown assignor.
    pub fn new(config: &ConsumerConfig, topics: Vec<String>) -> Result<Member> {
        let group = config.group_id.clone().ok_or_else(|| ClientError::Config {
            name: "group.id".into(),
            value: String::new(),
            reason: "subscribe needs a group".into(),
        })?;
        let assignors = config
            .assignors
            .iter()
            .map(|name| {
                super::assignor::assignor_by_name(name).ok_or_else(|| ClientError::Config {
                    name: "partition.assignment.strategy".into(),
                    value: name.clone(),
                    reason: "unknown assignor".into(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Member {
            group,
            instance_id: config.group_instance_id.clone(),
            member_id: String::new(),
            generation: -1,
            topics,
            pattern: None,
            next_pattern_check: None,
            owned: Vec::new(),
            assignors,
            chosen: None,
            needs_join: true,
            assigned_metadata: BTreeMap::new(),
            signals: Arc::new(Signals::default()),
            heartbeat: None,
        })
    }

    /// Who commits, as the coordinator knows this member.
    pub fn committer(&self) -> Committer {
        Committer {
            generation: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.instance_id.clone(),
        }
    }

    /// The protocol of the preferred assignor (used before the group has chosen).
    pub fn protocol(&self) -> RebalanceProtocol {
        self.chosen.unwrap_or_else(|| {
            self.assignors.first().map_or(RebalanceProtocol::Eager, |a| a.protocol())
        })
    }

    /// Stops heartbeating.
    pub fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }

    /// The owned partitions as the consumer names them.
    pub fn owned_partitions(&self) -> Vec<TopicPartition> {
        self.owned.iter().map(|(t, p)| TopicPartition::new(t.as_str(), *p)).collect()
    }
}

/// The outcome of one JoinGroup + SyncGroup round.
#[derive(Debug)]
pub enum Round {
    /// Joined: the new assignment and what changes.
    Joined {
        /// Partitions assigned in the new generation.
        assigned: Vec<(String, i32)>,
        /// What to revoke and add.
        changes: RebalanceChanges,
    },
    /// Try again (after the backoff when `backoff` is set).
    Retry {
        /// Wait first.
        backoff: bool,
    },
}

fn strb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// One JoinGroup and SyncGroup exchange.
///
/// # Errors
/// The errors a member cannot recover from by joining again (FENCED_INSTANCE_ID,
/// INCONSISTENT_GROUP_PROTOCOL, GROUP_MAX_SIZE_REACHED, authorization), and network
/// errors past the caller's patience.
pub async fn join_round(
    member: &mut Member,
    conn: &Connection,
    cluster: &Cluster,
    config: &ConsumerConfig,
) -> Result<Round> {
    let owned = TopicPartitions::group(member.owned.iter());
    let mut protocols = Vec::new();
    for assignor in &member.assignors {
        let subscription = Subscription {
            topics: member.topics.clone(),
            owned_partitions: if assignor.protocol() == RebalanceProtocol::Cooperative {
                owned.clone()
            } else {
                vec![]
            },
            generation_id: member.generation,
            ..Subscription::default()
        };
        let metadata =
            subscription.encode(PROTOCOL_VERSION).map_err(|e| protocol_error(conn, e))?;
        protocols.push(
            JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str(assignor.name()))
                .with_metadata(metadata),
        );
    }
    let version = conn.version(ApiKey::JoinGroup)?;
    let mut request = JoinGroupRequest::default()
        .with_group_id(GroupId(strb(&member.group)))
        .with_session_timeout_ms(ms(config.session_timeout))
        .with_member_id(strb(&member.member_id))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(protocols);
    if version >= 1 {
        request = request.with_rebalance_timeout_ms(ms(config.max_poll_interval));
    }
    if version >= 5 {
        request = request.with_group_instance_id(member.instance_id.as_deref().map(strb));
    }
    let wait = config.max_poll_interval.max(config.common.request_timeout) + JOIN_SLACK;
    let response = match conn
        .send(version, &Request::JoinGroup(request))
        .await?
        .with_timeout(wait)
        .wait()
        .await?
    {
        Response::JoinGroup(r) => r,
        other => return Err(unexpected(conn.addr(), &other)),
    };
    let code = ErrorCode::from_code(response.error_code);
    match code {
        ErrorCode::NONE => {}
        ErrorCode::MEMBER_ID_REQUIRED => {
            member.member_id = response.member_id.to_string();
            return Ok(Round::Retry { backoff: false });
        }
        ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
            member.member_id.clear();
            member.generation = -1;
            return Ok(Round::Retry { backoff: false });
        }
        ErrorCode::REBALANCE_IN_PROGRESS => return Ok(Round::Retry { backoff: false }),
        code if code.is_retriable() => {
            return Err(ClientError::kafka(code, None, format!("join group {}", member.group)))
        }
        code => return Err(ClientError::kafka(code, None, format!("join group {}", member.group))),
    }
    member.member_id = response.member_id.to_string();
    member.generation = response.generation_id;
    let chosen_name = response.protocol_name.as_ref().map(|p| p.to_string()).unwrap_or_default();
    let chosen = member.assignors.iter().position(|a| a.name() == chosen_name);
    let Some(chosen) = chosen else {
        return Err(ClientError::Protocol {
            addr: conn.addr().to_string(),
            reason: format!(
                "the group chose assignor {chosen_name:?}, which this member did not offer"
            ),
        });
    };
    member.chosen = Some(member.assignors[chosen].protocol());
    let assignments = if response.leader.as_str() == member.member_id {
        lead(member, chosen, &response, cluster).await?
    } else {
        Vec::new()
    };
    let version = conn.version(ApiKey::SyncGroup)?;
    let mut request = SyncGroupRequest::default()
        .with_group_id(GroupId(strb(&member.group)))
        .with_generation_id(member.generation)
        .with_member_id(strb(&member.member_id))
        .with_assignments(assignments);
    if version >= 3 {
        request = request.with_group_instance_id(member.instance_id.as_deref().map(strb));
    }
    if version >= 5 {
        request = request
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(Some(strb(&chosen_name)));
    }
    let response = match conn
        .send(version, &Request::SyncGroup(request))
        .await?
        .with_timeout(wait)
        .wait()
        .await?
    {
        Response::SyncGroup(r) => r,
        other => return Err(unexpected(conn.addr(), &other)),
    };
    match ErrorCode::from_code(response.error_code) {
        ErrorCode::NONE => {}
        ErrorCode::REBALANCE_IN_PROGRESS => return Ok(Round::Retry { backoff: false }),
        ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
            member.member_id.clear();
            member.generation = -1;
            return Ok(Round::Retry { backoff: false });
        }
        code => return Err(ClientError::kafka(code, None, format!("sync group {}", member.group))),
    }
    let assigned = if response.assignment.is_empty() {
        Vec::new()
    } else {
        Assignment::decode(&response.assignment).map_err(|e| protocol_error(conn, e))?.partitions()
    };
    let changes = rebalance_changes(protocol_of(member), &member.owned, &assigned);
    Ok(Round::Joined { assigned, changes })
}

fn protocol_of(member: &Member) -> RebalanceProtocol {
    member.protocol()
}

/// The leader's part: decode every member's subscription, run the chosen assignor over
/// current metadata, and encode each member's assignment.
async fn lead(
    member: &mut Member,
    chosen: usize,
    response: &JoinGroupResponse,
    cluster: &Cluster,
) -> Result<Vec<SyncGroupRequestAssignment>> {
    let assignor = &member.assignors[chosen];
    let mut subscriptions = Vec::new();
    let mut topics: Vec<String> = Vec::new();
    for m in &response.members {
        let subscription = Subscription::decode(&m.metadata).unwrap_or_default();
        topics.extend(subscription.topics.iter().cloned());
        let instance = m.group_instance_id.as_ref().map(|i| i.to_string());
        subscriptions.push(assignor.member_subscription(
            m.member_id.to_string(),
            instance,
            subscription,
        ));
    }
    topics.sort();
    topics.dedup();
    cluster.add_interest(topics.iter().map(String::as_str));
    let metadata = cluster.metadata_request(Some(&topics), false).await?;
    let mut partitions = BTreeMap::new();
    for t in &metadata.topics {
        if t.error_code == 0 {
            if let Some(name) = &t.name {
                partitions.insert(name.0.to_string(), t.partitions.len() as u32);
            }
        }
    }
    member.assigned_metadata = partitions.clone();
    let plan = assignor.assign(&partitions, &subscriptions);
    let mut out = Vec::new();
    for m in &response.members {
        let mine = plan.get(m.member_id.as_str()).cloned().unwrap_or_default();
        let assignment = Assignment {
            assigned_partitions: TopicPartitions::group(mine.iter()),
            user_data: None,
        };
        let bytes: Bytes = assignment
            .encode(PROTOCOL_VERSION)
            .map_err(|e| ClientError::Protocol { addr: "leader".into(), reason: e.to_string() })?;
        out.push(
            SyncGroupRequestAssignment::default()
                .with_member_id(m.member_id.clone())
                .with_assignment(bytes),
        );
    }
    Ok(out)
}

fn protocol_error(conn: &Connection, e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol { addr: conn.addr().to_string(), reason: e.to_string() }
}

fn ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

/// Starts the heartbeat task for the member's current generation.
pub fn start_heartbeat(member: &mut Member, cluster: Arc<Cluster>, config: &ConsumerConfig) {
    member.stop_heartbeat();
    let signals = member.signals.clone();
    let (group, who) = (member.group.clone(), member.committer());
    let (interval, max_poll) = (config.heartbeat_interval, config.max_poll_interval);
    *signals.last_poll.lock().expect("lock") = Some(Instant::now());
    member.heartbeat = Some(tokio::spawn(async move {
        let mut conn: Option<Arc<Connection>> = None;
        loop {
            tokio::time::sleep(interval).await;
            let last_poll = signals.last_poll.lock().expect("lock").unwrap_or_else(Instant::now);
            if last_poll.elapsed() > max_poll {
                tracing::warn!(
                    group,
                    "max.poll.interval.ms passed without a poll: leaving the group"
                );
                if let Some(c) = &conn {
                    let _ =
                        leave(c, &group, &who.member_id, who.group_instance_id.as_deref()).await;
                }
                raise(&signals, &signals.lost);
                signals.reset_member_id.store(true, Ordering::Release);
                return;
            }
            let c = match conn.as_ref().filter(|c| !c.is_closed()) {
                Some(c) => c.clone(),
                None => match offsets::coordinator(&cluster, &group).await {
                    Ok(c) => {
                        conn = Some(c.clone());
                        c
                    }
                    Err(_) => continue,
                },
            };
            match heartbeat(&c, &group, &who).await {
                Ok(ErrorCode::NONE) => {}
                Ok(ErrorCode::REBALANCE_IN_PROGRESS) => raise(&signals, &signals.rejoin),
                Ok(ErrorCode::UNKNOWN_MEMBER_ID) | Ok(ErrorCode::FENCED_INSTANCE_ID) => {
                    signals.reset_member_id.store(true, Ordering::Release);
                    raise(&signals, &signals.lost);
                    return;
                }
                Ok(ErrorCode::ILLEGAL_GENERATION) => {
                    raise(&signals, &signals.lost);
                    return;
                }
                Ok(_) | Err(_) => conn = None,
            }
        }
    }));
}

fn raise(signals: &Signals, flag: &AtomicBool) {
    flag.store(true, Ordering::Release);
    signals.notify.notify_waiters();
    signals.notify.notify_one();
}

async fn heartbeat(conn: &Connection, group: &str, who: &Committer) -> Result<ErrorCode> {
    let version = conn.version(ApiKey::Heartbeat)?;
    let mut request = HeartbeatRequest::default()
        .with_group_id(GroupId(strb(group)))
        .with_generation_id(who.generation)
        .with_member_id(strb(&who.member_id));
    if version >= 3 {
        request = request.with_group_instance_id(who.group_instance_id.as_deref().map(strb));
    }
    match conn.call(Request::Heartbeat(request)).await? {
        Response::Heartbeat(r) => Ok(ErrorCode::from_code(r.error_code)),
        other => Err(unexpected(conn.addr(), &other)),
    }
}

/// Leaves the group (LeaveGroup v3+ names members; older versions one member id).
///
/// # Errors
/// A network error; the coordinator's error code for the member.
pub async fn leave(
    conn: &Connection,
    group: &str,
    member_id: &str,
    instance: Option<&str>,
) -> Result<()> {
    let version = conn.version(ApiKey::LeaveGroup)?;
    let request = if version >= 3 {
        let identity = MemberIdentity::default()
            .with_member_id(strb(member_id))
            .with_group_instance_id(instance.map(strb));
        LeaveGroupRequest::default()
            .with_group_id(GroupId(strb(group)))
            .with_members(vec![identity])
    } else {
        LeaveGroupRequest::default()
            .with_group_id(GroupId(strb(group)))
            .with_member_id(strb(member_id))
    };
    match conn.call(Request::LeaveGroup(request)).await? {
        Response::LeaveGroup(r) => {
            let code = ErrorCode::from_code(r.error_code);
            if code.is_none() {
                Ok(())
            } else {
                Err(ClientError::kafka(code, None, format!("leave group {group}")))
            }
        }
        other => Err(unexpected(conn.addr(), &other)),
    }
}
