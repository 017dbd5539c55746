//! Request headers (v0–v2) and response headers (v0–v1).
//!
//! ```text
//! request header v1:  api_key i16 | api_version i16 | correlation_id i32 | client_id STRING (nullable)
//! request header v2:  v1 fields ... | tagged fields (uvarint count, then tag/size/bytes)
//! request header v0:  api_key i16 | api_version i16 | correlation_id i32      (ControlledShutdown v0 only)
//! response header v0: correlation_id i32
//! response header v1: correlation_id i32 | tagged fields
//! ```
//!
//! Which header a message uses depends on its API and version: a flexible version (KIP-482)
//! uses request header v2 and response header v1, others request header v1 and response
//! header v0. The exception: ApiVersions responses always use response header v0, even for
//! the flexible v3+, because a client reads the response before it knows what the broker
//! supports (KIP-511). `client_id` stays a non-compact `STRING` even in header v2.
//!
//! The rule comes from kafka-protocol's generated `header_version` functions (Kafka's JSON
//! schemas); tests pin it against Sluice's own `first_flexible` column in
//! [`crate::api_key::SUPPORTED_APIS`].
//!
//! Decoding takes the frame's `Bytes` and hands back the body as the rest of that `Bytes`:
//! `client_id` and the body both point into the frame, nothing is copied.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    RequestHeader as WireRequestHeader, ResponseHeader as WireResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use thiserror::Error;

use crate::api_key::ApiKey;

/// A request or response header that cannot be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The frame ends before the fixed part of the header (8 bytes for requests, 4 for
    /// responses).
    #[error("frame of {len} bytes is too short for a header")]
    Truncated {
        /// The frame's length.
        len: usize,
    },
    /// The API key is not one Kafka defines; the header version, and so the header's
    /// length, is unknown.
    #[error("unknown api key {api_key} (version {api_version}, correlation id {correlation_id})")]
    UnknownApiKey {
        /// The raw API key.
        api_key: i16,
        /// The raw API version.
        api_version: i16,
        /// The correlation id, for logging.
        correlation_id: i32,
    },
    /// The variable part of the header (client id, tagged fields) is malformed.
    #[error("malformed {api_key:?} v{api_version} request header (correlation id {correlation_id}): {reason}")]
    Malformed {
        /// The API key.
        api_key: ApiKey,
        /// The API version.
        api_version: i16,
        /// The correlation id, for logging.
        correlation_id: i32,
        /// What kafka-protocol reported.
        reason: String,
    },
    /// A response header for this version is malformed.
    #[error("malformed response header v{header_version}: {reason}")]
    MalformedResponse {
        /// The response header version.
        header_version: i16,
        /// What kafka-protocol reported.
        reason: String,
    },
    /// A header version outside v0–v2 (requests) or v0–v1 (responses) was asked for.
    #[error("cannot encode header version {header_version}: {reason}")]
    Unencodable {
        /// The header version.
        header_version: i16,
        /// What kafka-protocol reported.
        reason: String,
    },
}

/// The request header version for `api_key` at `api_version` (0, 1 or 2).
pub fn request_header_version(api_key: ApiKey, api_version: i16) -> i16 {
    api_key.request_header_version(api_version)
}

/// The response header version for `api_key` at `api_version` (0 or 1; always 0 for
/// ApiVersions).
pub fn response_header_version(api_key: ApiKey, api_version: i16) -> i16 {
    api_key.response_header_version(api_version)
}

/// A decoded request header.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestHeader {
    /// The API the request is for.
    pub api_key: ApiKey,
    /// The API version the client chose.
    pub api_version: i16,
    /// Echoed in the response so the client can match it.
    pub correlation_id: i32,
    /// The client's self-chosen id (`client.id`); `None` if sent as null.
    pub client_id: Option<StrBytes>,
    /// The header version this header was (or will be) encoded with.
    pub header_version: i16,
}

impl RequestHeader {
    /// A header for `api_key` at `api_version`, with the header version that pair uses.
    pub fn new(
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
        client_id: Option<StrBytes>,
    ) -> Self {
        let header_version = request_header_version(api_key, api_version);
        Self { api_key, api_version, correlation_id, client_id, header_version }
    }

    /// Decodes the header at the front of `frame`; returns it and the body (the rest of
    /// `frame`, not copied).
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`] if the frame is shorter than 8 bytes,
    /// [`HeaderError::UnknownApiKey`] for an API key Kafka does not define, and
    /// [`HeaderError::Malformed`] if the client id or tagged fields do not decode.
    pub fn decode(mut frame: Bytes) -> Result<(Self, Bytes), HeaderError> {
        let Some(fixed) = frame.first_chunk::<8>() else {
            return Err(HeaderError::Truncated { len: frame.len() });
        };
        let raw_key = i16::from_be_bytes([fixed[0], fixed[1]]);
        let api_version = i16::from_be_bytes([fixed[2], fixed[3]]);
        let correlation_id = i32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let Ok(api_key) = ApiKey::try_from(raw_key) else {
            return Err(HeaderError::UnknownApiKey {
                api_key: raw_key,
                api_version,
                correlation_id,
            });
        };
        let header_version = request_header_version(api_key, api_version);
        // `Bytes` as kafka-protocol's ByteBuf splits instead of copying: client_id and the
        // remaining body stay views of the frame.
        let wire = WireRequestHeader::decode(&mut frame, header_version).map_err(|e| {
            HeaderError::Malformed {
                api_key,
                api_version,
                correlation_id,
                reason: format!("{e:#}"),
            }
        })?;
        let header = Self {
            api_key,
            api_version,
            correlation_id,
            client_id: wire.client_id,
            header_version,
        };
        Ok((header, frame))
    }

    /// Appends the header, in `self.header_version`, to `out`.
    ///
    /// # Errors
    ///
    /// [`HeaderError::Unencodable`] if `header_version` is not 0, 1 or 2.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), HeaderError> {
        let mut wire = WireRequestHeader::default();
        wire.request_api_key = self.api_key as i16;
        wire.request_api_version = self.api_version;
        wire.correlation_id = self.correlation_id;
        wire.client_id.clone_from(&self.client_id);
        encode_or_truncate(out, self.header_version, |out| wire.encode(out, self.header_version))
    }
}

/// A response header: the correlation id, in header version 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The correlation id of the request this answers.
    pub correlation_id: i32,
    /// 0 or 1, see [`response_header_version`].
    pub header_version: i16,
}

impl ResponseHeader {
    /// The header answering `request`: same correlation id, header version by the rule.
    pub fn for_request(request: &RequestHeader) -> Self {
        Self {
            correlation_id: request.correlation_id,
            header_version: response_header_version(request.api_key, request.api_version),
        }
    }

    /// Appends the header to `out` (4 bytes, plus an empty tagged-field count for v1).
    ///
    /// # Errors
    ///
    /// [`HeaderError::Unencodable`] if `header_version` is not 0 or 1.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), HeaderError> {
        let mut wire = WireResponseHeader::default();
        wire.correlation_id = self.correlation_id;
        encode_or_truncate(out, self.header_version, |out| wire.encode(out, self.header_version))
    }

    /// Decodes a response header of `header_version` from the front of `frame`; returns it
    /// and the body (the rest of `frame`, not copied).
    ///
    /// # Errors
    ///
    /// [`HeaderError::Truncated`] if the frame is shorter than 4 bytes,
    /// [`HeaderError::MalformedResponse`] if its tagged fields do not decode.
    pub fn decode(mut frame: Bytes, header_version: i16) -> Result<(Self, Bytes), HeaderError> {
        if frame.len() < 4 {
            return Err(HeaderError::Truncated { len: frame.len() });
        }
        let wire = WireResponseHeader::decode(&mut frame, header_version).map_err(|e| {
            HeaderError::MalformedResponse { header_version, reason: format!("{e:#}") }
        })?;
        Ok((Self { correlation_id: wire.correlation_id, header_version }, frame))
    }
}

/// Runs a kafka-protocol encoder and leaves `out` as it was if the encoder fails half-way.
fn encode_or_truncate<E: std::fmt::Display>(
    out: &mut BytesMut,
    header_version: i16,
    encode: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<(), HeaderError> {
    let start = out.len();
    encode(out).map_err(|e| {
        out.truncate(start);
        HeaderError::Unencodable { header_version, reason: format!("{e:#}") }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_bytes(key: i16, version: i16, correlation: i32, client: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&key.to_be_bytes());
        v.extend_from_slice(&version.to_be_bytes());
        v.extend_from_slice(&correlation.to_be_bytes());
        v.extend_from_slice(&i16::try_from(client.len()).expect("short").to_be_bytes());
        v.extend_from_slice(client);
        v
    }

    #[test]
    fn decodes_header_v1_and_leaves_the_body_in_place() {
        let mut wire = request_bytes(3, 8, 42, b"rdkafka");
        wire.extend_from_slice(b"BODY");
        let frame = Bytes::from(wire);
        let base = frame.as_ptr() as usize;
        let (h, body) = RequestHeader::decode(frame).expect("valid");
        assert_eq!(h.api_key, ApiKey::Metadata);
        assert_eq!((h.api_version, h.correlation_id, h.header_version), (8, 42, 1));
        assert_eq!(h.client_id.as_deref(), Some("rdkafka"));
        assert_eq!(&body[..], b"BODY");
        assert_eq!(body.as_ptr() as usize, base + 8 + 2 + 7, "body is a view of the frame");
    }

    #[test]
    fn decodes_header_v2_with_tagged_fields() {
        let mut wire = request_bytes(18, 3, 7, b"c");
        wire.extend_from_slice(&[1, 5, 2, 0xaa, 0xbb]); // one tagged field: tag 5, 2 bytes
        wire.extend_from_slice(b"rest");
        let (h, body) = RequestHeader::decode(Bytes::from(wire)).expect("valid");
        assert_eq!((h.api_key, h.header_version), (ApiKey::ApiVersions, 2));
        assert_eq!(&body[..], b"rest");
    }

    #[test]
    fn null_client_id() {
        let mut wire = request_bytes(12, 0, 1, b"");
        wire[8..10].copy_from_slice(&(-1_i16).to_be_bytes());
        let (h, body) = RequestHeader::decode(Bytes::from(wire)).expect("valid");
        assert_eq!(h.client_id, None);
        assert!(body.is_empty());
    }

    #[test]
    fn errors_carry_what_is_known() {
        assert_eq!(
            RequestHeader::decode(Bytes::from_static(&[0, 3, 0])),
            Err(HeaderError::Truncated { len: 3 })
        );
        let wire = request_bytes(9999, 1, 77, b"x");
        assert_eq!(
            RequestHeader::decode(Bytes::from(wire)),
            Err(HeaderError::UnknownApiKey { api_key: 9999, api_version: 1, correlation_id: 77 })
        );
        let mut wire = request_bytes(0, 9, 5, b"abc");
        wire.truncate(11); // client id claims 3 bytes, 1 present
        match RequestHeader::decode(Bytes::from(wire)) {
            Err(HeaderError::Malformed { api_key: ApiKey::Produce, correlation_id: 5, .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn encode_decode_round_trip_every_header_version() {
        for (key, version, hv) in
            [(ApiKey::Produce, 8, 1), (ApiKey::Produce, 9, 2), (ApiKey::ControlledShutdown, 0, 0)]
        {
            let h = RequestHeader::new(key, version, -3, Some(StrBytes::from_static_str("id")));
            assert_eq!(h.header_version, hv);
            let mut out = BytesMut::new();
            h.encode(&mut out).expect("encodable");
            let (back, body) = RequestHeader::decode(out.freeze()).expect("decodable");
            assert!(body.is_empty());
            assert_eq!(back.correlation_id, -3);
            if hv > 0 {
                assert_eq!(back, h);
            }
        }
    }

    #[test]
    fn api_versions_responses_always_use_header_v0() {
        for v in 0..=4 {
            assert_eq!(response_header_version(ApiKey::ApiVersions, v), 0);
        }
        assert_eq!(response_header_version(ApiKey::Metadata, 8), 0);
        assert_eq!(response_header_version(ApiKey::Metadata, 9), 1);
    }

    #[test]
    fn response_header_bytes() {
        let mut out = BytesMut::new();
        ResponseHeader { correlation_id: 0x01020304, header_version: 0 }
            .encode(&mut out)
            .expect("v0");
        ResponseHeader { correlation_id: 5, header_version: 1 }.encode(&mut out).expect("v1");
        assert_eq!(&out[..], &[1, 2, 3, 4, 0, 0, 0, 5, 0]);
        let bad = ResponseHeader { correlation_id: 5, header_version: 7 }.encode(&mut out);
        assert!(matches!(bad, Err(HeaderError::Unencodable { header_version: 7, .. })));
        assert_eq!(out.len(), 9, "failed encode leaves the buffer as it was");
        let (h, body) =
            ResponseHeader::decode(Bytes::from_static(&[0, 0, 0, 5, 0, 9]), 1).expect("valid");
        assert_eq!((h.correlation_id, &body[..]), (5, &[9][..]));
    }
}
