//! The webhook signature: how a receiver knows a request came from this
//! notifier and was not replayed long after.
//!
//! Each request carries `Orderflow-Timestamp: <unix seconds>` and
//! `Orderflow-Signature: v1=<hex>`, where `<hex>` is the lowercase hex of
//! HMAC-SHA256 keyed with the endpoint's secret over `"<timestamp>.<body>"`.
//! Signing the timestamp with the body lets a receiver refuse old requests
//! (replays) by checking the timestamp against its own clock.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The scheme prefix of the signature header's value; a future scheme gets a
/// new prefix and both can be sent side by side during a rotation.
pub const SCHEME: &str = "v1";

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature header is not `v1=<hex>`")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("the timestamp is {skew_secs} s away from now, more than the tolerance")]
    Stale { skew_secs: i64 },
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Orderflow-Signature` header value for `body` sent at `timestamp`
/// (unix seconds): `v1=<hex(HMAC-SHA256(secret, "<timestamp>.<body>"))>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "{SCHEME}={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks a received signature header against the body and timestamp, in
/// constant time, and that `timestamp` is within `tolerance_secs` of `now`
/// (unix seconds). What a receiver runs before trusting a webhook.
pub fn verify(
    secret: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let hex_part = header
        .strip_prefix(SCHEME)
        .and_then(|rest| rest.strip_prefix('='))
        .ok_or(VerifyError::Malformed)?;
    let expected = hex::decode(hex_part).map_err(|_| VerifyError::Malformed)?;
    mac(secret, timestamp, body)
        .verify_slice(&expected)
        .map_err(|_| VerifyError::Mismatch)?;
    let skew_secs = (now - timestamp).abs();
    if skew_secs > tolerance_secs {
        return Err(VerifyError::Stale { skew_secs });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_0123456789abcdef";
    const BODY: &[u8] =
        br#"{"event_id":"00000000-0000-0000-0000-000000000000","type":"webhook.ping"}"#;

    #[test]
    fn the_signature_matches_a_known_vector() {
        // Computed independently with:
        // printf '%s' "1700000000.$BODY" | openssl dgst -sha256 -hmac "$SECRET"
        assert_eq!(sign(SECRET, 1_700_000_000, BODY), KNOWN);
    }

    const KNOWN: &str = "v1=3073bccb9b56ff610bc267de23bef37c0b4c8c50d813f4410e7a34d80b494c38";

    #[test]
    fn a_signature_verifies_only_for_its_body_secret_and_a_fresh_timestamp() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert_eq!(
            verify(SECRET, 1_700_000_000, BODY, &header, 1_700_000_100, 300),
            Ok(())
        );
        assert_eq!(
            verify(SECRET, 1_700_000_000, b"{}", &header, 1_700_000_000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(
                "another-secret-16",
                1_700_000_000,
                BODY,
                &header,
                1_700_000_000,
                300
            ),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, 1_700_000_001, BODY, &header, 1_700_000_001, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, 1_700_000_000, BODY, &header, 1_700_001_000, 300),
            Err(VerifyError::Stale { skew_secs: 1000 })
        );
        assert_eq!(
            verify(
                SECRET,
                1_700_000_000,
                BODY,
                "sha256=abc",
                1_700_000_000,
                300
            ),
            Err(VerifyError::Malformed)
        );
    }
}
