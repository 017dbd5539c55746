//! The only socket code of the client: one [`Connection`] per broker, and the version
//! negotiation that makes the client work with brokers of different Kafka releases.
//!
//! Each connection starts with ApiVersions; afterwards every request is sent in the
//! highest version both sides support ([`ApiVersionTable::pick`]). The client's own ranges
//! are the protocol crate's table ([`sluice_protocol::api_key::SUPPORTED_APIS`]): what
//! `kafka-protocol` can encode and Sluice itself serves, so the client and the broker
//! cannot drift apart.

pub mod connection;

pub use connection::Connection;

use sluice_protocol::api_key::{support, ApiKey, VersionRange};
use sluice_protocol::kafka_protocol::messages::ApiVersionsResponse;

/// The version ranges a broker advertised, intersected with the client's.
#[derive(Debug, Clone, Default)]
pub struct ApiVersionTable {
    ranges: Vec<(i16, VersionRange)>,
    /// Everything the broker advertised, APIs this client does not speak included.
    advertised: Vec<(i16, VersionRange)>,
}

impl ApiVersionTable {
    /// The intersection of `response`'s ranges with what this client speaks.
    pub fn from_response(response: &ApiVersionsResponse) -> Self {
        let mut ranges = Vec::new();
        let mut advertised: Vec<(i16, VersionRange)> = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, VersionRange::new(k.min_version, k.max_version)))
            .collect();
        advertised.sort_by_key(|(k, _)| *k);
        for key in &response.api_keys {
            let Ok(api) = ApiKey::try_from(key.api_key) else { continue };
            let Some(ours) = support(api) else { continue };
            let ours = ours.served();
            let (min, max) = (ours.min.max(key.min_version), ours.max.min(key.max_version));
            if min <= max {
                ranges.push((key.api_key, VersionRange::new(min, max)));
            }
        }
        ranges.sort_by_key(|(k, _)| *k);
        ApiVersionTable { ranges, advertised }
    }

    /// What the broker advertised for `api`, whether or not this client speaks it: for
    /// telling "the broker lacks it" from "this client lacks it".
    pub fn advertised(&self, api: ApiKey) -> Option<VersionRange> {
        let key = api as i16;
        let i = self.advertised.binary_search_by_key(&key, |(k, _)| *k).ok()?;
        Some(self.advertised[i].1)
    }

    /// The highest version of `api` both sides speak, if any.
    pub fn pick(&self, api: ApiKey) -> Option<i16> {
        let key = api as i16;
        self.ranges.binary_search_by_key(&key, |(k, _)| *k).ok().map(|i| self.ranges[i].1.max)
    }

    /// Whether the broker speaks `api` at `version` or above.
    pub fn at_least(&self, api: ApiKey, version: i16) -> bool {
        self.pick(api).is_some_and(|v| v >= version)
    }

    /// Every API both sides speak, by key, with the versions both speak (what `sluice
    /// cluster` shows).
    pub fn ranges(&self) -> impl Iterator<Item = (i16, VersionRange)> + '_ {
        self.ranges.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::kafka_protocol::messages::api_versions_response::ApiVersion;

    fn range(key: ApiKey, min: i16, max: i16) -> ApiVersion {
        ApiVersion::default().with_api_key(key as i16).with_min_version(min).with_max_version(max)
    }

    #[test]
    fn picks_the_highest_common_version() {
        // A Kafka 2.8-era broker: Produce up to 9, Fetch up to 12; and an API the client
        // does not know.
        let response = ApiVersionsResponse::default().with_api_keys(vec![
            range(ApiKey::Produce, 0, 9),
            range(ApiKey::Fetch, 0, 12),
            ApiVersion::default().with_api_key(999).with_max_version(3),
            range(ApiKey::Metadata, 20, 30),
        ]);
        let table = ApiVersionTable::from_response(&response);
        assert_eq!(table.pick(ApiKey::Produce), Some(9));
        assert_eq!(table.pick(ApiKey::Fetch), Some(12));
        assert_eq!(table.pick(ApiKey::Metadata), None, "no overlap");
        assert_eq!(table.pick(ApiKey::JoinGroup), None, "not advertised");
        assert!(table.at_least(ApiKey::Fetch, 12) && !table.at_least(ApiKey::Fetch, 13));
        let listed: Vec<(i16, VersionRange)> = table.ranges().collect();
        let ours = |api| support(api).unwrap().served();
        assert_eq!(
            listed,
            vec![
                (0, VersionRange::new(ours(ApiKey::Produce).min, 9)),
                (1, VersionRange::new(ours(ApiKey::Fetch).min, 12)),
            ],
            "by key, intersected, without what does not overlap"
        );
        let acls =
            ApiVersionsResponse::default().with_api_keys(vec![range(ApiKey::DescribeAcls, 0, 3)]);
        let acls = ApiVersionTable::from_response(&acls);
        assert_eq!(
            acls.pick(ApiKey::DescribeAcls),
            None,
            "this client does not speak DescribeAcls"
        );
        assert_eq!(acls.advertised(ApiKey::DescribeAcls), Some(VersionRange::new(0, 3)));
        assert_eq!(table.advertised(ApiKey::Metadata), Some(VersionRange::new(20, 30)));
        assert_eq!(table.advertised(ApiKey::DescribeAcls), None);
    }
}
