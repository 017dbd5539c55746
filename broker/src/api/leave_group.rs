//! LeaveGroup: v0–v2 name one member; v3+ name several, by member id or (for static
//! members, KIP-345) by instance id alone, and get an error per member.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::group::request::{LeaveResult, LeavingMember};

/// Answers a LeaveGroup request.
pub async fn handle(
    broker: &Broker,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let leaving: Vec<LeavingMember> = if version >= 3 {
        request
            .members
            .into_iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![LeavingMember { member_id: request.member_id.to_string(), instance_id: None }]
    };
    let group = request.group_id.0.to_string();
    let result = match broker.groups.leave(group, leaving).await {
        Ok(r) => r,
        Err(e) => LeaveResult { error: e.error_code(), members: Vec::new() },
    };
    response(result, version)
}

/// The response in `version`: before v3 the one member's error is the response's.
pub fn response(r: LeaveResult, version: i16) -> LeaveGroupResponse {
    let mut out = LeaveGroupResponse::default();
    if version < 3 {
        let member = r.members.first().map_or(ErrorCode::NONE, |(_, e)| *e);
        let error = if r.error == ErrorCode::NONE { member } else { r.error };
        out.error_code = error.code();
        return out;
    }
    out.error_code = r.error.code();
    out.members = r
        .members
        .into_iter()
        .map(|(m, error)| {
            let mut member = MemberResponse::default();
            member.member_id = m.member_id.into();
            member.group_instance_id = m.instance_id.map(StrBytes::from);
            member.error_code = error.code();
            member
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use super::*;

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let range = support(ApiKey::LeaveGroup).unwrap().advertised;
        for version in range.min..=range.max {
            let r = LeaveResult {
                error: ErrorCode::NONE,
                members: vec![(
                    LeavingMember { member_id: "m".into(), instance_id: Some("i".into()) },
                    ErrorCode::UNKNOWN_MEMBER_ID,
                )],
            };
            let out = response(r, version);
            if version < 3 {
                assert_eq!(out.error_code, ErrorCode::UNKNOWN_MEMBER_ID.code());
            }
            Response::LeaveGroup(out).encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
