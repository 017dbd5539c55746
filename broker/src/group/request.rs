//! What the coordinator is asked and what it answers: one request and one reply type per
//! Kafka API, with version differences already resolved by the handlers in `api/`.
//! Bytes fields (member metadata, assignments) hold exactly the bytes the client sent,
//! copied out of the request frame by the handlers: the group keeps them for a member's
//! lifetime, and a view would keep the whole frame alive.

use bytes::Bytes;
use sluice_protocol::error_code::ErrorCode;

use super::types::{CommittedOffset, GroupState, Protocol, TopicPartition};

/// A JoinGroup request, version differences already resolved by the handler.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// Group id.
    pub group_id: String,
    /// Member id; empty on a first join.
    pub member_id: String,
    /// `group.instance.id` (v5+).
    pub instance_id: Option<String>,
    /// Client id from the request header.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (v0: the session timeout).
    pub rebalance_timeout_ms: i32,
    /// Protocol type (`consumer`).
    pub protocol_type: String,
    /// Protocols, most preferred first.
    pub protocols: Vec<Protocol>,
    /// v4+ without an instance id: a first join gets MEMBER_ID_REQUIRED (KIP-394).
    pub require_known_member_id: bool,
    /// v9+: a static leader rejoining a stable group may be told to skip the assignment.
    pub supports_skip_assignment: bool,
}

/// A member as the leader's JoinGroup response lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    /// Member id.
    pub member_id: String,
    /// Instance id of a static member.
    pub instance_id: Option<String>,
    /// Its metadata for the selected protocol.
    pub metadata: Bytes,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// Error code.
    pub error: ErrorCode,
    /// Generation id (-1 on error).
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The member's id (assigned on a first join).
    pub member_id: String,
    /// Every member, for the leader only.
    pub members: Vec<JoinMember>,
    /// v9: the leader must not run the assignor.
    pub skip_assignment: bool,
}

impl JoinResult {
    /// An error answer.
    pub fn error(member_id: &str, error: ErrorCode) -> JoinResult {
        JoinResult {
            error,
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_owned(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// A SyncGroup request.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// Group id.
    pub group_id: String,
    /// Generation the member believes in.
    pub generation: i32,
    /// Member id.
    pub member_id: String,
    /// Instance id of a static member.
    pub instance_id: Option<String>,
    /// v5+: must match the group's.
    pub protocol_type: Option<String>,
    /// v5+: must match the group's.
    pub protocol_name: Option<String>,
    /// The leader's assignment, member id → bytes.
    pub assignments: Vec<(String, Bytes)>,
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// Error code.
    pub error: ErrorCode,
    /// The group's protocol type (on success).
    pub protocol_type: Option<String>,
    /// The group's protocol (on success).
    pub protocol_name: Option<String>,
    /// This member's assignment, exactly as the leader sent it.
    pub assignment: Bytes,
}

impl SyncResult {
    /// An error answer.
    pub fn error(error: ErrorCode) -> SyncResult {
        SyncResult { error, protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// A Heartbeat request.
#[derive(Debug, Clone)]
pub struct HeartbeatRequest {
    /// Group id.
    pub group_id: String,
    /// Generation.
    pub generation: i32,
    /// Member id.
    pub member_id: String,
    /// Instance id of a static member.
    pub instance_id: Option<String>,
}

/// A member leaving (LeaveGroup v3+ names several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavingMember {
    /// Member id; empty to remove a static member by instance id.
    pub member_id: String,
    /// Instance id.
    pub instance_id: Option<String>,
}

/// The answer to a LeaveGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResult {
    /// Top-level error.
    pub error: ErrorCode,
    /// Per-member errors.
    pub members: Vec<(LeavingMember, ErrorCode)>,
}

/// An offset to commit.
#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    /// Where.
    pub partition: TopicPartition,
    /// The offset.
    pub offset: i64,
    /// Leader epoch (v6+, else -1).
    pub leader_epoch: i32,
    /// The commit time v1 carries per partition (ms since the epoch); -1, what every other
    /// version means, for the coordinator's clock.
    pub commit_timestamp: i64,
    /// Client metadata.
    pub metadata: Option<String>,
}

/// An OffsetCommit request.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// Group id (may be empty, as Kafka allows).
    pub group_id: String,
    /// Generation; -1 for a group that does not use group management.
    pub generation: i32,
    /// Member id; empty for simple commits.
    pub member_id: String,
    /// Instance id (v7+).
    pub instance_id: Option<String>,
    /// v2–v4 `retention_time_ms` (-1: the broker's retention).
    pub retention_ms: i64,
    /// The offsets.
    pub offsets: Vec<OffsetToCommit>,
}

/// Offsets of one group, as OffsetFetch returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsets {
    /// Group id.
    pub group_id: String,
    /// Group-level error.
    pub error: ErrorCode,
    /// Each partition with its committed offset, if any (boxed: a request may name a
    /// million partitions without one, and each answer is then two words, not ten).
    pub offsets: Vec<(TopicPartition, Option<Box<CommittedOffset>>)>,
}

/// The answer to an OffsetDelete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOffsetsResult {
    /// Group-level error.
    pub error: ErrorCode,
    /// Per-partition errors.
    pub partitions: Vec<(TopicPartition, ErrorCode)>,
}

/// A group as ListGroups lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type, empty for groups that only commit offsets.
    pub protocol_type: String,
    /// State.
    pub state: GroupState,
}

/// ListGroups' state and type filters, read once: a request may name a state a million
/// times, and every group is checked against the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    /// The states to list; `None`: every state.
    pub states: Option<Vec<GroupState>>,
    /// Whether classic groups (every group here) are listed.
    pub classic: bool,
}

impl ListFilter {
    /// The filter a request's state and type names make (case-insensitive, KIP-518;
    /// no names: no filter). KIP-848's `consumer` type matches no group here.
    pub fn parse<'a>(
        states: impl IntoIterator<Item = &'a str>,
        types: impl IntoIterator<Item = &'a str>,
    ) -> ListFilter {
        let mut named = false;
        let mut wanted = [false; GroupState::ALL.len()];
        for name in states {
            named = true;
            for (slot, state) in wanted.iter_mut().zip(GroupState::ALL) {
                *slot |= name.eq_ignore_ascii_case(state.name());
            }
        }
        let states = named.then(|| {
            GroupState::ALL.into_iter().zip(wanted).filter(|(_, w)| *w).map(|(s, _)| s).collect()
        });
        let (mut typed, mut classic) = (false, false);
        for name in types {
            typed = true;
            classic |= name.eq_ignore_ascii_case("classic");
        }
        ListFilter { states, classic: classic || !typed }
    }
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the group's protocol (Stable groups only).
    pub metadata: Bytes,
    /// Assignment (Stable groups only).
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Error code.
    pub error: ErrorCode,
    /// Group id.
    pub group_id: String,
    /// State (`Dead` for an unknown group).
    pub state: GroupState,
    /// Protocol type.
    pub protocol_type: String,
    /// Selected protocol (Stable groups only).
    pub protocol: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// A request to the coordinator.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum GroupRequest {
    /// JoinGroup.
    Join(JoinRequest),
    /// SyncGroup.
    Sync(SyncRequest),
    /// Heartbeat.
    Heartbeat(HeartbeatRequest),
    /// LeaveGroup.
    Leave {
        /// Group id.
        group: String,
        /// The members leaving.
        members: Vec<LeavingMember>,
    },
    /// OffsetCommit.
    Commit(CommitRequest),
    /// OffsetFetch: per group, the partitions (`None`: all of them).
    FetchOffsets(Vec<(String, Option<Vec<TopicPartition>>)>),
    /// OffsetDelete.
    DeleteOffsets {
        /// Group id.
        group: String,
        /// The partitions whose offsets go.
        partitions: Vec<TopicPartition>,
    },
    /// ListGroups.
    List(ListFilter),
    /// DescribeGroups.
    Describe(Vec<String>),
    /// DeleteGroups.
    Delete(Vec<String>),
    /// A committed transaction's offsets, committed without the generation check (the
    /// member was checked when TxnOffsetCommit sent them); answered as [`GroupReply::Commit`].
    CommitTxnOffsets {
        /// Group id.
        group: String,
        /// The offsets.
        offsets: Vec<OffsetToCommit>,
    },
    /// TxnOffsetCommit's member check (KIP-447): group, generation, member id, instance
    /// id; answered as [`GroupReply::Heartbeat`]'s single error.
    ValidateTxnMember(TxnMember),
}

/// The member a TxnOffsetCommit names (v3+; older versions send generation -1 and no
/// member).
#[derive(Debug, Clone)]
pub struct TxnMember {
    /// Group id.
    pub group_id: String,
    /// Generation (-1: not checked).
    pub generation: i32,
    /// Member id (empty: not checked).
    pub member_id: String,
    /// Instance id of a static member.
    pub instance_id: Option<String>,
}

/// The coordinator's answer to a [`GroupRequest`], in the same variant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupReply {
    /// JoinGroup.
    Join(JoinResult),
    /// SyncGroup.
    Sync(SyncResult),
    /// Heartbeat.
    Heartbeat(ErrorCode),
    /// LeaveGroup.
    Leave(LeaveResult),
    /// OffsetCommit: an error per entry, in request order.
    Commit(Vec<ErrorCode>),
    /// OffsetFetch.
    FetchOffsets(Vec<GroupOffsets>),
    /// OffsetDelete.
    DeleteOffsets(DeleteOffsetsResult),
    /// ListGroups.
    List {
        /// Error code.
        error: ErrorCode,
        /// The groups.
        groups: Vec<GroupListing>,
    },
    /// DescribeGroups.
    Describe(Vec<GroupDescription>),
    /// DeleteGroups: an error per group, in request order.
    Delete(Vec<ErrorCode>),
}
