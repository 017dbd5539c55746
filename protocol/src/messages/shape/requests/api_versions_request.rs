//! Walker for kafka-protocol's `api_versions_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `ApiVersionsRequest`.
pub(in super::super) fn api_versions_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=4).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 3 {
        w.compact_string()?; // client_software_name
    }
    if version >= 3 {
        w.compact_string()?; // client_software_version
    }
    if version >= 3 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
