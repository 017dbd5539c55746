//! Walker for kafka-protocol's `sasl_authenticate_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `SaslAuthenticateRequest`.
pub(in super::super) fn sasl_authenticate_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    if version >= 2 {
        w.compact_bytes()?; // auth_bytes
    } else {
        w.bytes()?; // auth_bytes
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
