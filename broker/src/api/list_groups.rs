//! ListGroups: every group with its protocol type; v4+ with its state and an optional
//! state filter (case-insensitive, KIP-518); v5 with its type (always `classic` here)
//! and a type filter (KIP-848).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

use crate::broker::Broker;
use crate::group::request::{GroupListing, ListFilter};

/// Answers a ListGroups request.
pub async fn handle(
    broker: &Broker,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let states = request.states_filter.iter().filter(|_| version >= 4).map(|s| s.as_str());
    let types = request.types_filter.iter().filter(|_| version >= 5).map(|s| s.as_str());
    let filter = ListFilter::parse(states, types);
    let (error, groups) = match broker.groups.list(filter).await {
        Ok(listed) => listed,
        Err(e) => (e.error_code(), Vec::new()),
    };
    response(error, groups, version)
}

/// The response in `version`.
pub fn response(error: ErrorCode, groups: Vec<GroupListing>, version: i16) -> ListGroupsResponse {
    let mut out = ListGroupsResponse::default();
    out.error_code = error.code();
    out.groups = groups
        .into_iter()
        .map(|g| {
            let mut listed = ListedGroup::default();
            listed.group_id = GroupId(StrBytes::from(g.group_id));
            listed.protocol_type = g.protocol_type.into();
            if version >= 4 {
                listed.group_state = StrBytes::from_static_str(g.state.name());
            }
            if version >= 5 {
                listed.group_type = StrBytes::from_static_str("classic");
            }
            listed
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
    use crate::group::types::GroupState;

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let range = support(ApiKey::ListGroups).unwrap().advertised;
        for version in range.min..=range.max {
            let groups = vec![GroupListing {
                group_id: "g".into(),
                protocol_type: "consumer".into(),
                state: GroupState::Stable,
            }];
            let r = response(ErrorCode::NONE, groups, version);
            Response::ListGroups(r).encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
