//! DescribeGroups: state, protocol type, and members; a stable group's members come with
//! their metadata and assignment bytes exactly as the clients sent them. An unknown group
//! is reported as `Dead` without error (v0–v5, as Kafka).
//!
//! Each group is described once, where it first appears: Kafka describes a repeated one
//! again, but then one request of a few bytes per repetition could make the broker encode
//! every member's metadata and assignment of a group a million times. Clients key the
//! answers by group id (the Java admin client and librdkafka send each once).

use std::collections::HashSet;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::group::request::GroupDescription;
use crate::group::types::GroupState;

/// Answers a DescribeGroups request.
pub async fn handle(
    broker: &Broker,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut seen = HashSet::new();
    let ids: Vec<String> =
        request.groups.iter().filter(|g| seen.insert(&g.0)).map(|g| g.0.to_string()).collect();
    let described = match broker.groups.describe(ids.clone()).await {
        Ok(d) => d,
        Err(e) => ids
            .into_iter()
            .map(|group_id| GroupDescription {
                error: e.error_code(),
                group_id,
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            })
            .collect(),
    };
    response(described, version)
}

/// The response in `version`.
pub fn response(groups: Vec<GroupDescription>, version: i16) -> DescribeGroupsResponse {
    let mut out = DescribeGroupsResponse::default();
    out.groups = groups
        .into_iter()
        .map(|g| {
            let mut d = DescribedGroup::default();
            d.error_code = g.error.code();
            d.group_id = GroupId(StrBytes::from(g.group_id));
            d.group_state = StrBytes::from_static_str(g.state.name());
            d.protocol_type = g.protocol_type.into();
            d.protocol_data = g.protocol.into();
            d.members = g
                .members
                .into_iter()
                .map(|m| {
                    let mut member = DescribedGroupMember::default();
                    member.member_id = m.member_id.into();
                    if version >= 4 {
                        member.group_instance_id = m.instance_id.map(StrBytes::from);
                    }
                    member.client_id = m.client_id.into();
                    member.client_host = m.client_host.into();
                    member.member_metadata = m.metadata;
                    member.member_assignment = m.assignment;
                    member
                })
                .collect();
            d
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use sluice_protocol::error_code::ErrorCode;

    use super::*;
    use crate::group::request::MemberDescription;

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let range = support(ApiKey::DescribeGroups).unwrap().advertised;
        for version in range.min..=range.max {
            let g = GroupDescription {
                error: ErrorCode::NONE,
                group_id: "g".into(),
                state: GroupState::Stable,
                protocol_type: "consumer".into(),
                protocol: "range".into(),
                members: vec![MemberDescription {
                    member_id: "m".into(),
                    instance_id: Some("i".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    metadata: Bytes::from_static(&[1]),
                    assignment: Bytes::from_static(&[2]),
                }],
            };
            let r = response(vec![g], version);
            Response::DescribeGroups(r).encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
