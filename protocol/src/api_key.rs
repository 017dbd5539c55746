//! The APIs Sluice serves and the version ranges it advertises in ApiVersions.
//!
//! Every entry has two ranges:
//!
//! - **advertised**: what ApiVersions tells clients. Clients pick the highest version both
//!   sides support, so `max` decides what modern clients send, and `min` decides whether old
//!   clients turn features on: librdkafka up to 2.11 disables gzip/snappy/lz4 unless
//!   Produce's range includes v0, and disables consumer groups unless JoinGroup's (and
//!   FindCoordinator's, SyncGroup's, Heartbeat's, LeaveGroup's) does. Kafka itself
//!   advertises Produce 0–12 for that reason.
//! - **served**: what the broker actually answers. A request in the advertised range but
//!   below `served_min` still decodes, and the broker answers it, in the request's own
//!   version, with `UNSUPPORTED_VERSION` (35). Produce v0–v2 carry message format v0/v1,
//!   which Sluice does not store (Kafka 4.0 dropped them too).
//!
//! No `max` is above what `kafka-protocol` 0.15.1 can decode and encode (Kafka 3.9's
//! schemas): Produce 11, Fetch 17, Metadata 12, ListOffsets 9, JoinGroup 9. Fetch v13+ names
//! topics by id: the broker keeps topic ids and returns them from Metadata v10+.
//!
//! Minimums are Kafka 3.9's for every API that carries no records. Kafka 4.0 raised them
//! (KIP-896: ListOffsets 1, OffsetCommit 2, OffsetFetch 1, CreateTopics 2, DeleteTopics 1,
//! DescribeConfigs 1), and with that cut off clients of the 2.x era that still send the old
//! versions: a Go client commits with OffsetCommit v1 unless the application sets a
//! retention time, and kafka-python pinned to an old broker version sends ListOffsets v0.
//! Each old version is served with its own semantics, in its handler. Fetch below v4 stays
//! unadvertised and Produce below v3 refused: they carry message formats v0/v1, which
//! Sluice does not store (KIP-724; Kafka 4.0 dropped them too).
//!
//! | key | API | advertised | served | flexible from |
//! |---:|---|---|---|---|
//! | 0 | Produce | 0–11 | 3–11 | 9 |
//! | 1 | Fetch | 4–17 | 4–17 | 12 |
//! | 2 | ListOffsets | 0–9 | 0–9 | 6 |
//! | 3 | Metadata | 0–12 | 0–12 | 9 |
//! | 8 | OffsetCommit | 0–9 | 0–9 | 8 |
//! | 9 | OffsetFetch | 0–9 | 0–9 | 6 |
//! | 10 | FindCoordinator | 0–6 | 0–6 | 3 |
//! | 11 | JoinGroup | 0–9 | 0–9 | 6 |
//! | 12 | Heartbeat | 0–4 | 0–4 | 4 |
//! | 13 | LeaveGroup | 0–5 | 0–5 | 4 |
//! | 14 | SyncGroup | 0–5 | 0–5 | 4 |
//! | 15 | DescribeGroups | 0–5 | 0–5 | 5 |
//! | 16 | ListGroups | 0–5 | 0–5 | 3 |
//! | 17 | SaslHandshake | 0–1 | 0–1 | – |
//! | 18 | ApiVersions | 0–4 | 0–4 | 3 |
//! | 19 | CreateTopics | 0–7 | 0–7 | 5 |
//! | 20 | DeleteTopics | 0–6 | 0–6 | 4 |
//! | 21 | DeleteRecords | 0–2 | 0–2 | 2 |
//! | 22 | InitProducerId | 0–5 | 0–5 | 2 |
//! | 24 | AddPartitionsToTxn | 0–4 | 0–4 | 3 |
//! | 25 | AddOffsetsToTxn | 0–3 | 0–3 | 3 |
//! | 26 | EndTxn | 0–4 | 0–4 | 3 |
//! | 28 | TxnOffsetCommit | 0–3 | 0–3 | 3 |
//! | 32 | DescribeConfigs | 0–4 | 0–4 | 4 |
//! | 33 | AlterConfigs | 0–2 | 0–2 | 2 |
//! | 35 | DescribeLogDirs | 0–4 | 0–4 | 2 |
//! | 36 | SaslAuthenticate | 0–2 | 0–2 | 2 |
//! | 37 | CreatePartitions | 0–3 | 0–3 | 2 |
//! | 42 | DeleteGroups | 0–2 | 0–2 | 2 |
//! | 44 | IncrementalAlterConfigs | 0–1 | 0–1 | 1 |
//! | 47 | OffsetDelete | 0–0 | 0–0 | – |
//! | 60 | DescribeCluster | 0–1 | 0–1 | 0 |
//! | 61 | DescribeProducers | 0–0 | 0–0 | 0 |
//! | 65 | DescribeTransactions | 0–0 | 0–0 | 0 |
//! | 66 | ListTransactions | 0–1 | 0–1 | 0 |
//!
//! The transaction APIs stop below the versions of KIP-890 part 2 (AddPartitionsToTxn 5,
//! AddOffsetsToTxn 4, TxnOffsetCommit 4: a client that sends them expects a coordinator
//! that verifies and bumps epochs per transaction, which this one does not do); EndTxn 4
//! only allows TRANSACTION_ABORTABLE, which this coordinator never answers.
//!
//! The table is pinned by tests: it must match [`SUPPORTED_APIS`], every `max` must be
//! decodable by kafka-protocol, and "flexible from" must agree with kafka-protocol's
//! header-version rule.

pub use kafka_protocol::messages::ApiKey;

/// An inclusive range of API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// Lowest version in the range.
    pub min: i16,
    /// Highest version in the range.
    pub max: i16,
}

impl VersionRange {
    /// The range `min..=max`.
    pub const fn new(min: i16, max: i16) -> Self {
        Self { min, max }
    }

    /// Whether `version` lies in the range.
    pub const fn contains(&self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

/// One API Sluice serves: its advertised range, the lowest version it serves and where its
/// flexible versions (KIP-482 tagged fields, compact types) start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiSupport {
    /// The API.
    pub key: ApiKey,
    /// What ApiVersions advertises for this API.
    pub advertised: VersionRange,
    /// Lowest version answered normally; lower advertised versions get UNSUPPORTED_VERSION.
    pub served_min: i16,
    /// First flexible version, if any (request header v2, response header v1 from there).
    pub first_flexible: Option<i16>,
}

impl ApiSupport {
    /// The versions the broker answers normally.
    pub const fn served(&self) -> VersionRange {
        VersionRange::new(self.served_min, self.advertised.max)
    }

    /// Whether `version` is advertised (and so must decode).
    pub const fn is_advertised(&self, version: i16) -> bool {
        self.advertised.contains(version)
    }

    /// Whether the broker answers `version` normally rather than with UNSUPPORTED_VERSION.
    pub const fn is_served(&self, version: i16) -> bool {
        self.served().contains(version)
    }

    /// Whether `version` is a flexible version of this API.
    pub const fn is_flexible(&self, version: i16) -> bool {
        match self.first_flexible {
            Some(first) => version >= first,
            None => false,
        }
    }
}

const fn api(key: ApiKey, min: i16, max: i16, served_min: i16, flex: i16) -> ApiSupport {
    ApiSupport {
        key,
        advertised: VersionRange::new(min, max),
        served_min,
        // -1 marks an API with no flexible version; a const fn cannot take an Option nicely
        // in a table this long.
        first_flexible: if flex < 0 { None } else { Some(flex) },
    }
}

/// Every API Sluice serves, in API-key order; ApiVersions advertises exactly this list.
pub const SUPPORTED_APIS: [ApiSupport; 35] = [
    api(ApiKey::Produce, 0, 11, 3, 9),
    api(ApiKey::Fetch, 4, 17, 4, 12),
    api(ApiKey::ListOffsets, 0, 9, 0, 6),
    api(ApiKey::Metadata, 0, 12, 0, 9),
    api(ApiKey::OffsetCommit, 0, 9, 0, 8),
    api(ApiKey::OffsetFetch, 0, 9, 0, 6),
    api(ApiKey::FindCoordinator, 0, 6, 0, 3),
    api(ApiKey::JoinGroup, 0, 9, 0, 6),
    api(ApiKey::Heartbeat, 0, 4, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5, 0, 4),
    api(ApiKey::SyncGroup, 0, 5, 0, 4),
    api(ApiKey::DescribeGroups, 0, 5, 0, 5),
    api(ApiKey::ListGroups, 0, 5, 0, 3),
    api(ApiKey::SaslHandshake, 0, 1, 0, -1),
    api(ApiKey::ApiVersions, 0, 4, 0, 3),
    api(ApiKey::CreateTopics, 0, 7, 0, 5),
    api(ApiKey::DeleteTopics, 0, 6, 0, 4),
    api(ApiKey::DeleteRecords, 0, 2, 0, 2),
    api(ApiKey::InitProducerId, 0, 5, 0, 2),
    api(ApiKey::AddPartitionsToTxn, 0, 4, 0, 3),
    api(ApiKey::AddOffsetsToTxn, 0, 3, 0, 3),
    api(ApiKey::EndTxn, 0, 4, 0, 3),
    api(ApiKey::TxnOffsetCommit, 0, 3, 0, 3),
    api(ApiKey::DescribeConfigs, 0, 4, 0, 4),
    api(ApiKey::AlterConfigs, 0, 2, 0, 2),
    api(ApiKey::DescribeLogDirs, 0, 4, 0, 2),
    api(ApiKey::SaslAuthenticate, 0, 2, 0, 2),
    api(ApiKey::CreatePartitions, 0, 3, 0, 2),
    api(ApiKey::DeleteGroups, 0, 2, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1, 0, 1),
    api(ApiKey::OffsetDelete, 0, 0, 0, -1),
    api(ApiKey::DescribeCluster, 0, 1, 0, 0),
    api(ApiKey::DescribeProducers, 0, 0, 0, 0),
    api(ApiKey::DescribeTransactions, 0, 0, 0, 0),
    api(ApiKey::ListTransactions, 0, 1, 0, 0),
];

/// The support entry for `key`, or `None` if Sluice does not serve that API.
pub fn support(key: ApiKey) -> Option<&'static ApiSupport> {
    SUPPORTED_APIS.iter().find(|s| s.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_key_order_without_duplicates() {
        for pair in SUPPORTED_APIS.windows(2) {
            assert!((pair[0].key as i16) < (pair[1].key as i16), "{:?}", pair[1].key);
        }
    }

    #[test]
    fn ranges_are_sane() {
        for s in &SUPPORTED_APIS {
            assert!(s.advertised.min <= s.served_min, "{:?}", s.key);
            assert!(s.served_min <= s.advertised.max, "{:?}", s.key);
            let valid = s.key.valid_versions();
            assert!(valid.min <= s.advertised.min, "{:?}", s.key);
            assert!(
                s.advertised.max <= valid.max,
                "{:?}: kafka-protocol stops at {}",
                s.key,
                valid.max
            );
        }
    }

    #[test]
    fn flexible_versions_agree_with_kafka_protocol_header_rule() {
        for s in &SUPPORTED_APIS {
            for v in s.advertised.min..=s.advertised.max {
                let expected = if s.is_flexible(v) { 2 } else { 1 };
                assert_eq!(s.key.request_header_version(v), expected, "{:?} v{v}", s.key);
            }
        }
    }

    #[test]
    fn old_librdkafka_feature_checks_find_version_zero() {
        // librdkafka <= 2.11 enables compression and consumer groups only when these ranges
        // include v0 (rdkafka_feature.c).
        for key in [
            ApiKey::Produce,
            ApiKey::JoinGroup,
            ApiKey::SyncGroup,
            ApiKey::Heartbeat,
            ApiKey::LeaveGroup,
            ApiKey::FindCoordinator,
            ApiKey::InitProducerId,
            ApiKey::ApiVersions,
        ] {
            assert_eq!(support(key).map(|s| s.advertised.min), Some(0), "{key:?}");
        }
        assert!(!support(ApiKey::Produce).is_some_and(|s| s.is_served(2)));
        assert!(support(ApiKey::Produce).is_some_and(|s| s.is_served(3)));
    }

    #[test]
    fn doc_table_matches_the_const_table() {
        let doc = include_str!("api_key.rs");
        for s in &SUPPORTED_APIS {
            let flex = s.first_flexible.map_or("–".to_string(), |f| f.to_string());
            let row = format!(
                "//! | {} | {:?} | {}–{} | {}–{} | {} |",
                s.key as i16,
                s.key,
                s.advertised.min,
                s.advertised.max,
                s.served_min,
                s.advertised.max,
                flex
            );
            assert!(doc.contains(&row), "missing doc row: {row}");
        }
    }
}
