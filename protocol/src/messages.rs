//! Typed requests and responses for the APIs Sluice serves.
//!
//! # Why kafka-protocol
//!
//! Message schemas come from the [`kafka_protocol`] crate, pinned at `=0.15.1`. It is
//! generated from Kafka's own JSON schemas, so field order, version gates, flexible
//! versions and tagged fields match Kafka without Sluice maintaining ~50 request and
//! response layouts by hand. 0.15.1 carries Kafka 3.9's schemas (Produce ≤ 11, Fetch ≤ 17,
//! Metadata ≤ 12); 0.16 and later follow Kafka 4.0 and dropped the pre-4.0 versions
//! (0.18 decodes Produce 3–13, Fetch 4–18), while librdkafka up to 2.11 checks for
//! Produce v0 and old clients still send it: Sluice must at least decode those requests to
//! answer them with UNSUPPORTED_VERSION in their own version.
//!
//! Its decoders are generic over a `ByteBuf`. For [`bytes::Bytes`] that trait splits
//! (`Bytes::split_to`) instead of copying, so every `Bytes` and string field of a decoded
//! message, in particular each Produce partition's record set, is a view of the request
//! frame: decoding a Produce request copies no record bytes, whatever their size. The test
//! `produce_records_point_into_the_frame` pins this (the record set's pointer lies inside
//! the frame's allocation).
//!
//! Measured with `cargo bench -p sluice-benches --bench protocol` (criterion, median of
//! one run on this shared 2-core machine, so read the ratios, not the absolute numbers):
//!
//! | one Produce v9 frame with a 1 MiB record set | time |
//! |---|---|
//! | `RequestHeader::decode` + `Request::decode` from the frame's `Bytes` | 256 ns |
//! | of which the shape walk (below) | 39 ns |
//! | kafka-protocol's decode from `Bytes`, no walk | 137 ns |
//! | kafka-protocol's decode from `&[u8]` (its `ByteBuf` copies) | 23.7 µs |
//! | baseline: copying the 1 MiB record set into a new `Bytes` | 25.1 µs |
//!
//! Decoding from `Bytes` costs a constant ~100× less than one copy of the records and
//! does not grow with their size; decoding from a slice costs one full copy.
//!
//! # Hostile array counts
//!
//! kafka-protocol 0.15.1 pre-allocates arrays with `Vec::with_capacity(count)` from the
//! untrusted count, which lets a few bytes abort the process. [`Request::decode`] and
//! [`Response::decode`] therefore first walk the body with [`shape`], which rejects any
//! count larger than the bytes left; only then does kafka-protocol decode it. See
//! [`shape`] for the details and the tests in `protocol/tests/hostile.rs` for the
//! allocation bound a counting allocator measures.
//!
//! # ApiVersions
//!
//! [`api_versions_response`] builds the answer from [`crate::api_key::SUPPORTED_APIS`],
//! including KIP-511's fallback: an ApiVersions request in a version Sluice does not know
//! gets `UNSUPPORTED_VERSION` in a **v0** body that still lists every API, so the client can
//! retry with a version from that list. Tagged fields left at their defaults
//! (SupportedFeatures, FinalizedFeaturesEpoch, FinalizedFeatures, ZkMigrationReady) are
//! left out of a v3+ body: kafka-protocol writes a tagged field only when it differs from
//! the default, and librdkafka 2.0.2 (Debian's kcat) misreads them. A test pins the bytes.

pub mod shape;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use thiserror::Error;

use crate::api_key::{support, ApiKey, VersionRange, SUPPORTED_APIS};
use crate::error_code::ErrorCode;
use crate::frame::{begin_frame, finish_frame, FrameError};
use crate::header::{HeaderError, RequestHeader, ResponseHeader};
use shape::ShapeError;

/// A request body that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Sluice does not serve this API (it is not in ApiVersions).
    #[error("api {api_key:?} is not served")]
    UnsupportedApi {
        /// The API.
        api_key: ApiKey,
    },
    /// The version is outside the advertised range. For ApiVersions the broker still
    /// answers, with [`api_versions_response`]; for other APIs Kafka closes the connection.
    #[error("{api_key:?} v{version} is outside the advertised versions {}–{}", advertised.min, advertised.max)]
    UnsupportedVersion {
        /// The API.
        api_key: ApiKey,
        /// The version asked for.
        version: i16,
        /// What Sluice advertises.
        advertised: VersionRange,
    },
    /// The body's lengths or array counts do not fit the body (see [`shape`]).
    #[error("{api_key:?} v{version} body rejected: {source}")]
    Shape {
        /// The API.
        api_key: ApiKey,
        /// The version.
        version: i16,
        /// Which field failed.
        source: ShapeError,
    },
    /// kafka-protocol could not decode the body (invalid UTF-8, a field not valid in this
    /// version, ...).
    #[error("{api_key:?} v{version} body does not decode: {reason}")]
    Malformed {
        /// The API.
        api_key: ApiKey,
        /// The version.
        version: i16,
        /// What kafka-protocol reported.
        reason: String,
    },
}

/// A message that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// kafka-protocol refused the body: a version it does not know, or a field set to a
    /// non-default value that this version does not have.
    #[error("cannot encode {api_key:?} v{version}: {reason}")]
    Body {
        /// The API.
        api_key: ApiKey,
        /// The version.
        version: i16,
        /// What kafka-protocol reported.
        reason: String,
    },
    /// The header could not be encoded.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The frame does not fit a size prefix.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

macro_rules! messages {
    ($( $api:ident($request:ident, $response:ident), )*) => {
        /// A decoded request, one variant per API Sluice serves.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Request {
            $(
                #[doc = concat!("A ", stringify!($api), " request.")]
                $api($request),
            )*
        }

        /// A response, one variant per API Sluice serves.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Response {
            $(
                #[doc = concat!("A ", stringify!($api), " response.")]
                $api($response),
            )*
        }

        impl Request {
            /// The API this request belongs to.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $( Self::$api(_) => ApiKey::$api, )*
                }
            }

            fn decode_kafka(api_key: ApiKey, version: i16, body: &mut Bytes)
                -> Option<Result<Self, String>> {
                Some(match api_key {
                    $( ApiKey::$api => $request::decode(body, version)
                        .map(Self::$api).map_err(|e| format!("{e:#}")), )*
                    _ => return None,
                })
            }

            fn encode_kafka(&self, version: i16, out: &mut BytesMut) -> Result<(), String> {
                match self {
                    $( Self::$api(m) => m.encode(out, version), )*
                }
                .map_err(|e| format!("{e:#}"))
            }

            /// The all-defaults request of `api_key`.
            #[cfg(test)]
            fn default_for(api_key: ApiKey) -> Option<Self> {
                Some(match api_key {
                    $( ApiKey::$api => Self::$api($request::default()), )*
                    _ => return None,
                })
            }
        }

        impl Response {
            /// The API this response belongs to.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $( Self::$api(_) => ApiKey::$api, )*
                }
            }

            fn decode_kafka(api_key: ApiKey, version: i16, body: &mut Bytes)
                -> Option<Result<Self, String>> {
                Some(match api_key {
                    $( ApiKey::$api => $response::decode(body, version)
                        .map(Self::$api).map_err(|e| format!("{e:#}")), )*
                    _ => return None,
                })
            }

            fn encode_kafka(&self, version: i16, out: &mut BytesMut) -> Result<(), String> {
                match self {
                    $( Self::$api(m) => m.encode(out, version), )*
                }
                .map_err(|e| format!("{e:#}"))
            }
        }
    };
}

messages! {
    Produce(ProduceRequest, ProduceResponse),
    Fetch(FetchRequest, FetchResponse),
    ListOffsets(ListOffsetsRequest, ListOffsetsResponse),
    Metadata(MetadataRequest, MetadataResponse),
    OffsetCommit(OffsetCommitRequest, OffsetCommitResponse),
    OffsetFetch(OffsetFetchRequest, OffsetFetchResponse),
    FindCoordinator(FindCoordinatorRequest, FindCoordinatorResponse),
    JoinGroup(JoinGroupRequest, JoinGroupResponse),
    Heartbeat(HeartbeatRequest, HeartbeatResponse),
    LeaveGroup(LeaveGroupRequest, LeaveGroupResponse),
    SyncGroup(SyncGroupRequest, SyncGroupResponse),
    DescribeGroups(DescribeGroupsRequest, DescribeGroupsResponse),
    ListGroups(ListGroupsRequest, ListGroupsResponse),
    SaslHandshake(SaslHandshakeRequest, SaslHandshakeResponse),
    ApiVersions(ApiVersionsRequest, ApiVersionsResponse),
    CreateTopics(CreateTopicsRequest, CreateTopicsResponse),
    DeleteTopics(DeleteTopicsRequest, DeleteTopicsResponse),
    DeleteRecords(DeleteRecordsRequest, DeleteRecordsResponse),
    InitProducerId(InitProducerIdRequest, InitProducerIdResponse),
    DescribeConfigs(DescribeConfigsRequest, DescribeConfigsResponse),
    AlterConfigs(AlterConfigsRequest, AlterConfigsResponse),
    DescribeLogDirs(DescribeLogDirsRequest, DescribeLogDirsResponse),
    SaslAuthenticate(SaslAuthenticateRequest, SaslAuthenticateResponse),
    CreatePartitions(CreatePartitionsRequest, CreatePartitionsResponse),
    DeleteGroups(DeleteGroupsRequest, DeleteGroupsResponse),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse),
    OffsetDelete(OffsetDeleteRequest, OffsetDeleteResponse),
    DescribeCluster(DescribeClusterRequest, DescribeClusterResponse),
    AddPartitionsToTxn(AddPartitionsToTxnRequest, AddPartitionsToTxnResponse),
    AddOffsetsToTxn(AddOffsetsToTxnRequest, AddOffsetsToTxnResponse),
    EndTxn(EndTxnRequest, EndTxnResponse),
    TxnOffsetCommit(TxnOffsetCommitRequest, TxnOffsetCommitResponse),
    DescribeTransactions(DescribeTransactionsRequest, DescribeTransactionsResponse),
    ListTransactions(ListTransactionsRequest, ListTransactionsResponse),
    DescribeProducers(DescribeProducersRequest, DescribeProducersResponse),
}

impl Request {
    /// Decodes the body of the request described by `header`.
    ///
    /// `body` is the rest of the frame after the header ([`RequestHeader::decode`]); the
    /// decoded message's byte and string fields are views of it. The version must be in
    /// the advertised range; whether it is also *served* (Produce v0–v2 are not) is the
    /// broker's check, via [`crate::api_key::ApiSupport::is_served`]. Bytes after the
    /// message are ignored, as Kafka does.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnsupportedApi`], [`DecodeError::UnsupportedVersion`],
    /// [`DecodeError::Shape`] for lengths or counts the body cannot hold, and
    /// [`DecodeError::Malformed`] for anything else kafka-protocol rejects.
    pub fn decode(header: &RequestHeader, body: Bytes) -> Result<Self, DecodeError> {
        let (api_key, version) = (header.api_key, header.api_version);
        let supported = support(api_key).ok_or(DecodeError::UnsupportedApi { api_key })?;
        if !supported.is_advertised(version) {
            let advertised = supported.advertised;
            return Err(DecodeError::UnsupportedVersion { api_key, version, advertised });
        }
        shape::walk_request(api_key, version, &body).map_err(|source| DecodeError::Shape {
            api_key,
            version,
            source,
        })?;
        let mut body = body;
        match Self::decode_kafka(api_key, version, &mut body) {
            Some(Ok(request)) => Ok(request),
            Some(Err(reason)) => Err(DecodeError::Malformed { api_key, version, reason }),
            None => Err(DecodeError::UnsupportedApi { api_key }),
        }
    }

    /// Appends the body in `version` to `out` (the client side); `out` is unchanged on error.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Body`] if kafka-protocol cannot encode this message in `version`.
    pub fn encode(&self, version: i16, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        self.encode_kafka(version, out).map_err(|reason| {
            out.truncate(start);
            EncodeError::Body { api_key: self.api_key(), version, reason }
        })
    }

    /// Appends a whole request frame (size, `header`, body in `header.api_version`) to `out`.
    ///
    /// # Errors
    ///
    /// Any [`EncodeError`]; `out` is unchanged on error.
    pub fn encode_frame(
        &self,
        header: &RequestHeader,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        with_frame(out, |out| {
            header.encode(out)?;
            self.encode(header.api_version, out)
        })
    }
}

impl Response {
    /// Decodes a response body of `api_key` at `version` (the client side), after the same
    /// shape walk requests get: a broker is a peer too.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnsupportedApi`], [`DecodeError::Shape`] or [`DecodeError::Malformed`].
    pub fn decode(api_key: ApiKey, version: i16, body: Bytes) -> Result<Self, DecodeError> {
        shape::walk_response(api_key, version, &body).map_err(|source| match source {
            ShapeError::UnknownApi { .. } => DecodeError::UnsupportedApi { api_key },
            source => DecodeError::Shape { api_key, version, source },
        })?;
        let mut body = body;
        match Self::decode_kafka(api_key, version, &mut body) {
            Some(Ok(response)) => Ok(response),
            Some(Err(reason)) => Err(DecodeError::Malformed { api_key, version, reason }),
            None => Err(DecodeError::UnsupportedApi { api_key }),
        }
    }

    /// Appends the body in `version` to `out`; `out` is unchanged on error.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Body`] if kafka-protocol cannot encode this message in `version`,
    /// typically because a field only later versions have was set.
    pub fn encode(&self, version: i16, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        self.encode_kafka(version, out).map_err(|reason| {
            out.truncate(start);
            EncodeError::Body { api_key: self.api_key(), version, reason }
        })
    }

    /// Appends a whole response frame (size, `header`, body in `version`) to `out`.
    ///
    /// Use [`ResponseHeader::for_request`] for the header: it applies the header-version
    /// rule, including response header v0 for every ApiVersions response.
    ///
    /// # Errors
    ///
    /// Any [`EncodeError`]; `out` is unchanged on error.
    pub fn encode_frame(
        &self,
        header: ResponseHeader,
        version: i16,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        with_frame(out, |out| {
            header.encode(out)?;
            self.encode(version, out)
        })
    }
}

/// Writes a size-prefixed frame whose contents `write` appends; undoes everything on error.
fn with_frame(
    out: &mut BytesMut,
    write: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = begin_frame(out);
    let written = write(out).and_then(|()| Ok(finish_frame(out, start)?));
    if written.is_err() {
        out.truncate(start);
    }
    written
}

/// The ApiVersions answer to send: the version to encode it in, and the body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiVersionsReply {
    /// The response version: the request's, or 0 when the request's is not supported.
    pub version: i16,
    /// The body: an error code, every API in [`SUPPORTED_APIS`] with its advertised range.
    pub body: ApiVersionsResponse,
}

impl ApiVersionsReply {
    /// The body as a [`Response`].
    pub fn into_response(self) -> Response {
        Response::ApiVersions(self.body)
    }
}

/// Builds the ApiVersions response for a request of `request_version`.
///
/// A supported version gets `NONE` in that version. Any other version (a client newer than
/// Sluice, or garbage) gets `UNSUPPORTED_VERSION` (35) in a v0 body that still lists every
/// API (KIP-511), so the client can retry with a version from the list. Either way the
/// response goes out with response header v0 ([`ResponseHeader::for_request`] does that).
pub fn api_versions_response(request_version: i16) -> ApiVersionsReply {
    let supported = support(ApiKey::ApiVersions).is_some_and(|s| s.is_advertised(request_version));
    let (version, error) = if supported {
        (request_version, ErrorCode::NONE)
    } else {
        (0, ErrorCode::UNSUPPORTED_VERSION)
    };
    let mut body = ApiVersionsResponse::default();
    body.error_code = error.code();
    body.api_keys = SUPPORTED_APIS
        .iter()
        .map(|s| {
            let mut api = ApiVersion::default();
            api.api_key = s.key as i16;
            api.min_version = s.advertised.min;
            api.max_version = s.advertised.max;
            api
        })
        .collect();
    ApiVersionsReply { version, body }
}

#[cfg(test)]
mod tests;
