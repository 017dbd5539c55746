//! Consumer groups: list, describe and delete them, and read, set and delete their
//! committed offsets.
//!
//! Everything about a group goes to its coordinator (FindCoordinator first); a
//! coordinator that moved or is still loading is looked up again and asked again. Groups
//! with different coordinators are asked in one request per coordinator. ListGroups goes
//! to every broker, since each lists only the groups it coordinates.
//!
//! Offsets are set as Kafka's admin client sets them for a group without members: an
//! OffsetCommit with generation -1 and an empty member id, which a group with members
//! refuses (UNKNOWN_MEMBER_ID) so that it cannot overwrite a live consumer's position.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use sluice_protocol::api_key::ApiKey;
use sluice_protocol::error_code::ErrorCode;
use sluice_protocol::kafka_protocol::messages::describe_groups_response::DescribedGroup;
use sluice_protocol::kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use sluice_protocol::kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest, OffsetDeleteRequest,
};
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use sluice_protocol::messages::{Request, Response};

use super::routing::{coordinator_moved, Route};
use super::Admin;
use crate::cluster::{missing, unexpected};
pub use crate::consumer::offsets::OffsetAndMetadata;
use crate::consumer::offsets::{self, Committer};
use crate::consumer::protocol::Assignment;
use crate::error::{check, ClientError, Result};
use crate::metadata::TopicPartition;

/// A group's state, as the coordinator names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupState {
    /// No members; offsets may remain.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// The group is gone, or never existed.
    Dead,
    /// KIP-848 groups: the coordinator is computing the assignment.
    Assigning,
    /// KIP-848 groups: members are taking up a new assignment.
    Reconciling,
    /// A state this client does not know.
    Unknown,
}

impl GroupState {
    /// The state Kafka names `name` (any case).
    pub fn from_name(name: &str) -> Self {
        const NAMES: [(&str, GroupState); 7] = [
            ("Empty", GroupState::Empty),
            ("PreparingRebalance", GroupState::PreparingRebalance),
            ("CompletingRebalance", GroupState::CompletingRebalance),
            ("Stable", GroupState::Stable),
            ("Dead", GroupState::Dead),
            ("Assigning", GroupState::Assigning),
            ("Reconciling", GroupState::Reconciling),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(GroupState::Unknown, |(_, s)| *s)
    }
}

/// A group as [`Admin::list_groups`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// `consumer` for consumer groups; empty for a group that only has offsets.
    pub protocol_type: String,
    /// Its state (ListGroups v4+ only).
    pub state: Option<GroupState>,
}

/// A group as [`Admin::describe_groups`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// Its state.
    pub state: GroupState,
    /// `consumer` for consumer groups.
    pub protocol_type: String,
    /// The protocol of the current generation (for consumers, the assignor).
    pub protocol: String,
    /// Its members.
    pub members: Vec<MemberDescription>,
}

/// A member of a [`GroupDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its static membership id (KIP-345), if any (DescribeGroups v4+).
    pub group_instance_id: Option<String>,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connected from.
    pub client_host: String,
    /// What it was assigned.
    pub assignment: MemberAssignment,
}

/// A member's assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberAssignment {
    /// A consumer group member's assignment, decoded (empty while it has none).
    Consumer(Assignment),
    /// The bytes as the coordinator sent them: another protocol type, or a consumer
    /// assignment that does not decode.
    Raw(Bytes),
}

impl MemberAssignment {
    fn decode(protocol_type: &str, bytes: Bytes) -> Self {
        if protocol_type != "consumer" {
            return MemberAssignment::Raw(bytes);
        }
        // A member between SyncGroups has no assignment yet, as in Kafka's admin client.
        if bytes.is_empty() {
            return MemberAssignment::Consumer(Assignment::default());
        }
        Assignment::decode(&bytes).map_or(MemberAssignment::Raw(bytes), MemberAssignment::Consumer)
    }
}

impl Admin {
    /// Every group of every broker, by group id.
    ///
    /// # Errors
    /// The first broker's error if any broker cannot list its groups within the deadline.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        self.retry(coordinator_moved, move || async move {
            let nodes = self.brokers().await?;
            let routed = nodes.iter().map(|&n| (n, Ok(Route::Node(n)))).collect();
            let build = |_: i16, _: &[i32]| Ok(Request::ListGroups(ListGroupsRequest::default()));
            let answers = self.scatter(routed, ApiKey::ListGroups, build, listed).await;
            let mut groups = BTreeMap::new();
            for answer in answers {
                for g in answer? {
                    groups.entry(g.group_id.clone()).or_insert(g);
                }
            }
            Ok(groups.into_values().collect())
        })
        .await
    }

    /// The state, protocol and members of each distinct group named, in the order first
    /// named. A group that does not exist is reported [`GroupState::Dead`], not an error.
    ///
    /// # Errors
    /// Per group, [`ClientError::Kafka`] with its coordinator's error. The call fails as a
    /// whole only when no coordinator could be looked up.
    pub async fn describe_groups(
        &self,
        groups: &[String],
    ) -> Result<Vec<(String, Result<GroupDescription>)>> {
        self.settle(groups, coordinator_moved, move |open: Vec<String>| async move {
            let routed = open.iter().cloned().zip(self.coordinators(&open).await?).collect();
            let build = |_: i16, keys: &[String]| {
                let ids = keys.iter().map(|g| GroupId(StrBytes::from_string(g.clone()))).collect();
                Ok(Request::DescribeGroups(DescribeGroupsRequest::default().with_groups(ids)))
            };
            Ok(self.scatter(routed, ApiKey::DescribeGroups, build, described).await)
        })
        .await
    }

    /// Deletes groups without members, with their committed offsets.
    ///
    /// # Errors
    /// Per group, [`ClientError::Kafka`]: NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, ... The call
    /// fails as a whole only when no coordinator could be looked up.
    pub async fn delete_groups(&self, groups: &[String]) -> Result<Vec<(String, Result<()>)>> {
        self.settle(groups, coordinator_moved, move |open: Vec<String>| async move {
            let routed = open.iter().cloned().zip(self.coordinators(&open).await?).collect();
            let build = |_: i16, keys: &[String]| {
                let ids = keys.iter().map(|g| GroupId(StrBytes::from_string(g.clone()))).collect();
                Ok(Request::DeleteGroups(DeleteGroupsRequest::default().with_groups_names(ids)))
            };
            let read = |addr: &str, _: i16, response: Response, keys: &[String]| {
                let Response::DeleteGroups(r) = response else {
                    return Err(unexpected(addr, &response));
                };
                let codes: HashMap<&str, i16> =
                    r.results.iter().map(|g| (g.group_id.0.as_str(), g.error_code)).collect();
                Ok(keys
                    .iter()
                    .map(|g| {
                        let code = codes.get(g.as_str()).ok_or_else(|| missing(addr, g))?;
                        check(*code, None, format!("delete group {g}"))
                    })
                    .collect())
            };
            Ok(self.scatter(routed, ApiKey::DeleteGroups, build, read).await)
        })
        .await
    }

    /// The offsets `group` has committed: for `partitions`, or for every partition when
    /// `None`. A partition without a committed offset is left out.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] with the group's or a partition's error, and
    /// [`ClientError::UnsupportedVersion`] for `None` from a broker before OffsetFetch v2.
    pub async fn list_consumer_group_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        // Offsets of an open transaction become readable when it ends (KIP-447).
        let retriable = |e: &ClientError| {
            coordinator_moved(e) || e.code() == Some(ErrorCode::UNSTABLE_OFFSET_COMMIT)
        };
        self.retry(retriable, move || async move {
            let route = self.coordinator(group).await?;
            // Not require_stable: Kafka's admin client asks for it only when told to.
            let build = |version: i16| offsets::fetch_request(group, partitions, false, version);
            let (addr, version, response) = self.call(&route, ApiKey::OffsetFetch, build).await?;
            offsets::fetched(&addr, group, version, response)
        })
        .await
    }

    /// Commits `offsets` for `group`, which must have no members. Returns each distinct
    /// partition with its outcome; a partition given twice commits its first entry.
    ///
    /// # Errors
    /// Per partition, [`ClientError::Kafka`]: UNKNOWN_MEMBER_ID while the group has
    /// members, UNKNOWN_TOPIC_OR_PARTITION, ... The call fails as a whole when the
    /// coordinator cannot be reached.
    pub async fn alter_consumer_group_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<BTreeMap<TopicPartition, Result<()>>> {
        let wanted = &offsets::distinct(offsets.iter().map(|(tp, o)| (tp, o)));
        let who = &Committer::standalone();
        self.retry(coordinator_moved, move || async move {
            let route = self.coordinator(group).await?;
            let build = |version: i16| Ok(offsets::commit_request(group, who, wanted, version));
            let (addr, _, response) = self.call(&route, ApiKey::OffsetCommit, build).await?;
            let outcomes =
                offsets::commit_outcomes(&addr, group, response, wanted.keys().copied())?;
            unless_coordinator_moved(outcomes)
        })
        .await
    }

    /// Deletes the committed offsets of `partitions` in `group` (OffsetDelete, KIP-496).
    ///
    /// # Errors
    /// [`ClientError::Kafka`] with the group's error as a whole (GROUP_ID_NOT_FOUND,
    /// NON_EMPTY_GROUP, ...); per partition GROUP_SUBSCRIBED_TO_TOPIC,
    /// UNKNOWN_TOPIC_OR_PARTITION, ...
    pub async fn delete_consumer_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Result<()>>> {
        let wanted = &offsets::distinct(partitions.iter().map(|tp| (tp, ())));
        self.retry(coordinator_moved, move || async move {
            let route = self.coordinator(group).await?;
            let build = |_: i16| {
                let partitions = wanted.keys().map(|tp| {
                    (
                        *tp,
                        OffsetDeleteRequestPartition::default().with_partition_index(tp.partition),
                    )
                });
                let topics = offsets::by_topic(partitions)
                    .into_iter()
                    .map(|(name, ps)| {
                        OffsetDeleteRequestTopic::default().with_name(name).with_partitions(ps)
                    })
                    .collect();
                let request = OffsetDeleteRequest::default()
                    .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
                    .with_topics(topics);
                Ok(Request::OffsetDelete(request))
            };
            let (addr, _, response) = self.call(&route, ApiKey::OffsetDelete, build).await?;
            let Response::OffsetDelete(r) = response else {
                return Err(unexpected(&addr, &response));
            };
            check(r.error_code, None, format!("delete offsets of group {group}"))?;
            let codes = r.topics.iter().flat_map(|t| {
                t.partitions.iter().map(|p| ((t.name.0.as_str(), p.partition_index), p.error_code))
            });
            let context = |tp: &TopicPartition| format!("delete offset of {tp} in group {group}");
            let outcomes =
                offsets::partition_outcomes(&addr, wanted.keys().copied(), codes, context)?;
            unless_coordinator_moved(outcomes)
        })
        .await
    }
}

/// One outcome per node of a ListGroups answer (there is one node per request).
fn listed(
    addr: &str,
    version: i16,
    response: Response,
    nodes: &[i32],
) -> Result<Vec<Result<Vec<GroupListing>>>> {
    let Response::ListGroups(r) = response else { return Err(unexpected(addr, &response)) };
    let outcome = check(r.error_code, None, format!("list groups of {addr}")).map(|()| {
        r.groups
            .iter()
            .map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: (version >= 4).then(|| GroupState::from_name(&g.group_state)),
            })
            .collect::<Vec<_>>()
    });
    Ok(nodes.iter().map(|_| outcome.clone()).collect())
}

fn described(
    addr: &str,
    _: i16,
    response: Response,
    groups: &[String],
) -> Result<Vec<Result<GroupDescription>>> {
    let Response::DescribeGroups(r) = response else { return Err(unexpected(addr, &response)) };
    let mut by_id: HashMap<String, DescribedGroup> =
        r.groups.into_iter().map(|g| (g.group_id.0.to_string(), g)).collect();
    Ok(groups
        .iter()
        .map(|id| {
            let g = by_id.remove(id).ok_or_else(|| missing(addr, id))?;
            check(g.error_code, None, format!("describe group {id}"))?;
            let protocol_type = g.protocol_type.to_string();
            let members = g
                .members
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: MemberAssignment::decode(&protocol_type, m.member_assignment),
                })
                .collect();
            Ok(GroupDescription {
                group_id: id.clone(),
                state: GroupState::from_name(&g.group_state),
                protocol: g.protocol_data.to_string(),
                protocol_type,
                members,
            })
        })
        .collect())
}

/// `outcomes`, unless a partition's says the coordinator moved: then the call fails as a
/// whole, so that it is retried at the new coordinator.
fn unless_coordinator_moved(
    outcomes: BTreeMap<TopicPartition, Result<()>>,
) -> Result<BTreeMap<TopicPartition, Result<()>>> {
    match outcomes.values().find_map(|o| o.as_ref().err().filter(|e| coordinator_moved(e))) {
        Some(e) => Err(e.clone()),
        None => Ok(outcomes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::protocol::TopicPartitions;

    #[test]
    fn member_assignments_decode_as_the_consumer_protocol_or_stay_raw() {
        let assignment = Assignment {
            assigned_partitions: vec![TopicPartitions { topic: "t".into(), partitions: vec![1] }],
            user_data: None,
        };
        let bytes = assignment.encode(0).unwrap();
        assert_eq!(
            MemberAssignment::decode("consumer", bytes.clone()),
            MemberAssignment::Consumer(assignment)
        );
        assert_eq!(
            MemberAssignment::decode("connect", bytes.clone()),
            MemberAssignment::Raw(bytes),
            "another protocol type's bytes are not read"
        );
        assert_eq!(
            MemberAssignment::decode("consumer", Bytes::new()),
            MemberAssignment::Consumer(Assignment::default()),
            "a member between SyncGroups"
        );
        let garbage = Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff]);
        assert_eq!(
            MemberAssignment::decode("consumer", garbage.clone()),
            MemberAssignment::Raw(garbage)
        );
    }
}
