//! Heartbeat: keeps a member's session alive and tells it when a rebalance started
//! (REBALANCE_IN_PROGRESS), that it is stale (ILLEGAL_GENERATION), unknown
//! (UNKNOWN_MEMBER_ID) or fenced by a newer instance (FENCED_INSTANCE_ID).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::group::request::{self, Reply, Request};

/// Answers a Heartbeat request.
pub async fn handle(broker: &Broker, request: HeartbeatRequest) -> HeartbeatResponse {
    let heartbeat = request::HeartbeatRequest {
        group_id: request.group_id.0.to_string(),
        generation: request.generation_id,
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|s| s.to_string()),
    };
    let error = match broker.groups.call(Request::Heartbeat(heartbeat)).await {
        Ok(Reply::Heartbeat(e)) => e,
        _ => ErrorCode::COORDINATOR_NOT_AVAILABLE,
    };
    let mut out = HeartbeatResponse::default();
    out.error_code = error.code();
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
        let range = support(ApiKey::Heartbeat).unwrap().advertised;
        for version in range.min..=range.max {
            let mut r = HeartbeatResponse::default();
            r.error_code = ErrorCode::REBALANCE_IN_PROGRESS.code();
            Response::Heartbeat(r).encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
