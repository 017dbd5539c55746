//! Heartbeat: keeps a member's session alive and tells it when a rebalance started
//! (REBALANCE_IN_PROGRESS), that it is stale (ILLEGAL_GENERATION), unknown
//! (UNKNOWN_MEMBER_ID) or fenced by a newer instance (FENCED_INSTANCE_ID).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::broker::Broker;
use crate::group::request;

/// Answers a Heartbeat request.
pub async fn handle(broker: &Broker, request: HeartbeatRequest) -> HeartbeatResponse {
    let heartbeat = request::HeartbeatRequest {
        group_id: request.group_id.0.to_string(),
        generation: request.generation_id,
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.map(|s| s.to_string()),
    };
    let error = broker.groups.heartbeat(heartbeat).await.unwrap_or_else(|e| e.error_code());
    let mut out = HeartbeatResponse::default();
    out.error_code = error.code();
    out
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use sluice_protocol::error_code::ErrorCode;

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
