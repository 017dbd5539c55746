//! JoinGroup: the request waits in the coordinator until the group's join phase ends,
//! then gets the generation, the leader, and (for the leader) every member's metadata.
//!
//! Version semantics: v0 has no rebalance timeout (the session timeout stands in); v4+
//! first joins without a member id get MEMBER_ID_REQUIRED and a member id to rejoin with
//! (KIP-394), older versions get their member id in the same round; v5+ carries static
//! membership (KIP-345); v7+ returns the protocol type; v9 may tell a static leader to
//! skip the assignment (KIP-814).

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::header::RequestHeader;

use crate::broker::Broker;
use crate::group::off_worker_if;
use crate::group::request::{JoinRequest, JoinResult};
use crate::group::types::Protocol;

/// Answers a JoinGroup request (after the join phase, which may take the rebalance
/// timeout).
pub async fn handle(
    broker: &Broker,
    header: &RequestHeader,
    peer: std::net::SocketAddr,
    request: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    let protocols = off_worker_if(request.protocols, distinct_protocols).await;
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.map(|s| s.to_string());
    let join = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: member_id.clone(),
        require_known_member_id: version >= 4 && instance_id.is_none(),
        instance_id,
        client_id: header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default(),
        // Kafka's form: "/" and the address, as InetAddress prints it.
        client_host: format!("/{}", peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols,
        supports_skip_assignment: version >= 9,
    };
    let result = match broker.groups.join(join).await {
        Ok(r) => r,
        Err(e) => JoinResult::error(&member_id, e.error_code()),
    };
    response(result, version)
}

/// The member's protocols in its order of preference, each name once with the metadata
/// it first came with: the group counts, per protocol, the members that support it, and
/// a name repeated in one member must count once (Kafka keeps a member's protocols as a
/// set of names), however many times a request repeats it.
fn distinct_protocols(protocols: Vec<JoinGroupRequestProtocol>) -> Vec<Protocol> {
    let mut seen = HashSet::new();
    protocols
        .into_iter()
        .filter(|p| seen.insert(p.name.clone()))
        // Copied: the member keeps it for its lifetime, and a view would keep the whole
        // request frame alive with it (a small metadata in a padded 100 MiB frame).
        .map(|p| Protocol {
            name: p.name.to_string(),
            metadata: Bytes::copy_from_slice(&p.metadata),
        })
        .collect()
}

/// The response in `version`: fields the version lacks stay at their defaults.
pub fn response(r: JoinResult, version: i16) -> JoinGroupResponse {
    let mut out = JoinGroupResponse::default();
    out.error_code = r.error.code();
    out.generation_id = r.generation;
    if version >= 7 {
        out.protocol_type = r.protocol_type.map(StrBytes::from);
        out.protocol_name = r.protocol_name.map(StrBytes::from);
    } else {
        // Not nullable before v7.
        out.protocol_name = Some(r.protocol_name.unwrap_or_default().into());
    }
    out.leader = r.leader.into();
    if version >= 9 {
        out.skip_assignment = r.skip_assignment;
    }
    out.member_id = r.member_id.into();
    out.members = r
        .members
        .into_iter()
        .map(|m| {
            let mut member = JoinGroupResponseMember::default();
            member.member_id = m.member_id.into();
            if version >= 5 {
                member.group_instance_id = m.instance_id.map(StrBytes::from);
            }
            member.metadata = m.metadata;
            member
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
    use crate::group::request::JoinMember;

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let range = support(ApiKey::JoinGroup).unwrap().advertised;
        for version in range.min..=range.max {
            let full = JoinResult {
                error: ErrorCode::NONE,
                generation: 3,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                leader: "m-1".into(),
                member_id: "m-1".into(),
                members: vec![JoinMember {
                    member_id: "m-1".into(),
                    instance_id: Some("i".into()),
                    metadata: Bytes::from_static(&[0, 1, 2]),
                }],
                skip_assignment: true,
            };
            for r in [full, JoinResult::error("", ErrorCode::MEMBER_ID_REQUIRED)] {
                let mut buf = BytesMut::new();
                Response::JoinGroup(response(r, version))
                    .encode(version, &mut buf)
                    .unwrap_or_else(|e| panic!("v{version}: {e}"));
            }
        }
    }

    #[test]
    fn a_protocol_named_again_keeps_its_first_metadata_and_place() {
        let protocol = |name: &'static str, metadata: &'static [u8]| {
            let mut p = JoinGroupRequestProtocol::default();
            p.name = StrBytes::from_static_str(name);
            p.metadata = Bytes::from_static(metadata);
            p
        };
        let mut sent = vec![protocol("range", b"1"), protocol("sticky", b"2")];
        sent.extend((0..1000).map(|_| protocol("range", b"3")));
        let kept = distinct_protocols(sent);
        let names: Vec<_> = kept.iter().map(|p| (p.name.as_str(), &p.metadata[..])).collect();
        assert_eq!(names, [("range", &b"1"[..]), ("sticky", &b"2"[..])]);
    }
}
