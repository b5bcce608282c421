//! `X-Hub-Signature-256` checks, as Meta signs deliveries.

use ring::hmac;

/// The outcome of checking a delivery's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureVerdict {
    Valid,
    Missing,
    Malformed,
    Mismatch,
}

/// Checks `header` (`sha256=<hex>`) against HMAC-SHA256 of the raw `body` bytes under
/// `secret`, in constant time. The body must be the bytes as received, never re-serialised.
pub fn verify_hub_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> SignatureVerdict {
    let Some(header) = header else {
        return SignatureVerdict::Missing;
    };
    let Some(expected) = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
    else {
        return SignatureVerdict::Malformed;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    match hmac::verify(&key, body, &expected) {
        Ok(()) => SignatureVerdict::Valid,
        Err(_) => SignatureVerdict::Mismatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
    }

    #[test]
    fn a_signature_over_the_raw_bytes_is_valid() {
        let body = br#"{"text":"Ol\u00e1"}"#;
        let header = sign(b"app-secret", body);
        assert_eq!(
            verify_hub_signature(b"app-secret", body, Some(&header)),
            SignatureVerdict::Valid
        );
    }

    #[test]
    fn a_re_serialised_body_no_longer_matches() {
        let raw = br#"{"text":"Ol\u00e1"}"#;
        let header = sign(b"app-secret", raw);
        let reserialised = "{\"text\":\"Olá\"}".as_bytes();
        assert_eq!(
            verify_hub_signature(b"app-secret", reserialised, Some(&header)),
            SignatureVerdict::Mismatch
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_told_apart() {
        assert_eq!(
            verify_hub_signature(b"s", b"{}", None),
            SignatureVerdict::Missing
        );
        assert_eq!(
            verify_hub_signature(b"s", b"{}", Some("md5=abc")),
            SignatureVerdict::Malformed
        );
        assert_eq!(
            verify_hub_signature(b"s", b"{}", Some("sha256=zz")),
            SignatureVerdict::Malformed
        );
    }
}
