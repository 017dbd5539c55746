//! SaslHandshake and SaslAuthenticate on a listener without SASL: the handshake answers
//! UNSUPPORTED_SASL_MECHANISM with an empty mechanism list and authentication answers
//! ILLEGAL_SASL_STATE, so a client configured for SASL fails with a clear error instead
//! of a dropped connection.

use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::error_code::ErrorCode;

/// Answers SaslHandshake: no mechanism is enabled.
pub fn handshake(_request: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let mut r = SaslHandshakeResponse::default();
    r.error_code = ErrorCode::UNSUPPORTED_SASL_MECHANISM.code();
    r
}

/// Answers SaslAuthenticate: there was no handshake to authenticate after.
pub fn authenticate(_request: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    let mut r = SaslAuthenticateResponse::default();
    r.error_code = ErrorCode::ILLEGAL_SASL_STATE.code();
    r.error_message =
        Some(StrBytes::from_static_str("this listener has no SASL mechanism enabled"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use sluice_protocol::messages::Response;

    #[test]
    fn both_encode_at_every_advertised_version() {
        for v in 0..=1 {
            let r = Response::SaslHandshake(handshake(SaslHandshakeRequest::default()));
            r.encode(v, &mut BytesMut::new()).unwrap();
        }
        for v in 0..=2 {
            let r = Response::SaslAuthenticate(authenticate(SaslAuthenticateRequest::default()));
            r.encode(v, &mut BytesMut::new()).unwrap();
        }
    }
}
