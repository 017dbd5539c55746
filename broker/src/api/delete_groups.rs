//! DeleteGroups: removes empty groups and their offsets (tombstones in
//! `__consumer_offsets`); NON_EMPTY_GROUP for a group with members, GROUP_ID_NOT_FOUND
//! for an unknown one. A group named more than once is answered once.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};

use crate::api::first_occurrences;
use crate::broker::Broker;

/// Answers a DeleteGroups request.
pub async fn handle(broker: &Broker, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    // Each group once, where it first appears (a second deletion could only find it gone).
    let first = first_occurrences(&request.groups_names);
    let groups: Vec<GroupId> = request
        .groups_names
        .into_iter()
        .zip(first)
        .filter_map(|(g, first)| first.then_some(g))
        .collect();
    let ids: Vec<String> = groups.iter().map(|g| g.0.to_string()).collect();
    let errors = match broker.groups.delete(ids).await {
        Ok(r) => r,
        Err(e) => vec![e.error_code(); groups.len()],
    };
    let mut out = DeleteGroupsResponse::default();
    out.results = groups
        .into_iter()
        .zip(errors)
        .map(|(group, error)| {
            let mut r = DeletableGroupResult::default();
            // A view of the request's bytes, not a copy.
            r.group_id = group;
            r.error_code = error.code();
            r
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::protocol::StrBytes;
    use sluice_protocol::api_key::{support, ApiKey};
    use sluice_protocol::messages::Response;

    use sluice_protocol::error_code::ErrorCode;

    use super::*;

    #[test]
    fn responses_encode_at_every_advertised_version() {
        let range = support(ApiKey::DeleteGroups).unwrap().advertised;
        for version in range.min..=range.max {
            let mut r = DeleteGroupsResponse::default();
            let mut g = DeletableGroupResult::default();
            g.group_id = GroupId(StrBytes::from_static_str("g"));
            g.error_code = ErrorCode::NON_EMPTY_GROUP.code();
            r.results.push(g);
            Response::DeleteGroups(r).encode(version, &mut BytesMut::new()).unwrap();
        }
    }
}
