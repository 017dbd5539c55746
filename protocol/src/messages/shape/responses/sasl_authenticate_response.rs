//! Walker for kafka-protocol's `sasl_authenticate_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `SaslAuthenticateResponse`.
pub(in super::super) fn sasl_authenticate_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=2).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(2)?; // error_code
    if version >= 2 {
        w.compact_string()?; // error_message
    } else {
        w.string()?; // error_message
    }
    if version >= 2 {
        w.compact_bytes()?; // auth_bytes
    } else {
        w.bytes()?; // auth_bytes
    }
    if version >= 1 {
        w.fixed(8)?; // session_lifetime_ms
    }
    if version >= 2 {
        w.unknown_tagged_fields()?;
    }
    Ok(())
}
