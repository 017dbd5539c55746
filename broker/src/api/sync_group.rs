//! SyncGroup: followers wait until the leader's SyncGroup brings the assignment (and it
//! is written to `__consumer_offsets`); each member gets exactly the bytes the leader
//! gave for it. v5+ checks and returns the protocol type and name.

use bytes::Bytes;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::group::off_worker_if;
use crate::group::request::{SyncRequest, SyncResult};

/// Answers a SyncGroup request (once the assignment is known).
pub async fn handle(broker: &Broker, request: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let owned = |a: Vec<SyncGroupRequestAssignment>| {
        // Copied: the group keeps each assignment for the generation's lifetime, and a view
        // would keep the leader's whole request frame alive with it.
        a.into_iter()
            .map(|a| (a.member_id.to_string(), Bytes::copy_from_slice(&a.assignment)))
            .collect()
    };
    let assignments = off_worker_if(request.assignments, owned).await;
    let sync = SyncRequest {
        group_id: request.group_id.0.to_string(),
        generation: request.generation_id,
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|s| s.to_string()),
        protocol_type: request.protocol_type.map(|s| s.to_string()),
        protocol_name: request.protocol_name.map(|s| s.to_string()),
        assignments,
    };
    let result = match broker.groups.sync(sync).await {
        Ok(r) => r,
        Err(e) => SyncResult::error(e.error_code()),
    };
    response(result, version)
}

/// The response in `version`.
pub fn response(r: SyncResult, version: i16) -> SyncGroupResponse {
    let mut out = SyncGroupResponse::default();
    out.error_code = r.error.code();
    if version >= 5 {
        out.protocol_type = r.protocol_type.map(StrBytes::from);
        out.protocol_name = r.protocol_name.map(StrBytes::from);
    }
    out.assignment = r.assignment;
    out
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use sluice_protocol::error_code::ErrorCode;

    use super::*;

    #[test]
    fn responses_encode_at_every_advertised_version_with_the_bytes_intact() {
        let range = support(ApiKey::SyncGroup).unwrap().advertised;
        for version in range.min..=range.max {
            let r = SyncResult {
                error: ErrorCode::NONE,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignment: Bytes::from_static(&[0, 0, 0xff, 0x80]),
            };
            let mut buf = BytesMut::new();
            Response::SyncGroup(response(r, version)).encode(version, &mut buf).unwrap();
            let back = Response::decode(ApiKey::SyncGroup, version, buf.freeze()).unwrap();
            let Response::SyncGroup(back) = back else { panic!() };
            assert_eq!(back.assignment.as_ref(), [0, 0, 0xff, 0x80]);
        }
    }
}
