//! Walker for kafka-protocol's `sasl_handshake_request.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `SaslHandshakeRequest`.
pub(in super::super) fn sasl_handshake_request<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=1).contains(&version) {
        return Err(w.invalid(version));
    }
    w.string()?; // mechanism
    Ok(())
}
