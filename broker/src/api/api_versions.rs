//! ApiVersions: the supported-versions table. An unknown ApiVersions version gets
//! UNSUPPORTED_VERSION in a v0 body that still lists every API (KIP-511), so the client
//! retries with a version it finds there.

use sluice_protocol::header::RequestHeader;
use sluice_protocol::messages::api_versions_response;

use super::Reply;

/// Answers an ApiVersions request of any version (the body is not even needed).
///
/// # Errors
/// An encoder failure (a broker bug).
pub fn handle(header: &RequestHeader) -> Result<Reply, sluice_protocol::messages::EncodeError> {
    let reply = api_versions_response(header.api_version);
    let version = reply.version;
    Reply::message(header, version, &reply.into_response())
}
