//! Walker for kafka-protocol's `sasl_handshake_response.rs`; generated, do not edit by hand.

use super::super::{Visitor, Walked};

/// Walks `SaslHandshakeResponse`.
pub(in super::super) fn sasl_handshake_response<W: Visitor>(w: &mut W, version: i16) -> Walked {
    if !(0..=1).contains(&version) {
        return Err(w.invalid(version));
    }
    w.fixed(2)?; // error_code
    w.array(|w| w.string())?; // mechanisms
    Ok(())
}
