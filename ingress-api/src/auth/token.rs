//! Access tokens: HS256 JWTs with the user's id, role and token version.

use std::time::Duration;

use hmac::{Hmac, Mac};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use orderflow_core::domain::Role;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

const ISSUER: &str = "orderflow";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: Uuid,
    /// The user's role when the token was issued.
    pub role: Role,
    /// The user's `token_version` when the token was issued: a token older
    /// than the user's current version is revoked (see [`super::revocation`]).
    /// Tokens issued before versions existed read as version 0.
    #[serde(default)]
    pub ver: i32,
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    /// The signing secret as an HMAC key, for values bound to a token (see
    /// [`TokenKeys::tag`]).
    tag_key: Hmac<Sha256>,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        // Only HS256 is accepted: a token claiming another algorithm (or
        // "none") is refused rather than trusted.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
            tag_key: Hmac::new_from_slice(secret).expect("HMAC takes a key of any length"),
        }
    }

    /// An HMAC-SHA256 of `message` under the signing secret. `purpose` is
    /// mixed in first, so a tag made for one use is never valid for another
    /// and none can pass for a token signature.
    pub fn tag(&self, purpose: &str, message: &str) -> [u8; 32] {
        self.keyed(purpose, message).finalize().into_bytes().into()
    }

    /// Whether `presented` is the [`TokenKeys::tag`] of `message`, compared
    /// in constant time.
    pub fn tag_matches(&self, purpose: &str, message: &str, presented: &[u8]) -> bool {
        self.keyed(purpose, message).verify_slice(presented).is_ok()
    }

    fn keyed(&self, purpose: &str, message: &str) -> Hmac<Sha256> {
        let mut mac = self.tag_key.clone();
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(message.as_bytes());
        mac
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for a user whose tokens were never revoked (version 0).
    pub fn issue(&self, user_id: Uuid, role: Role) -> anyhow::Result<String> {
        self.issue_with_version(user_id, role, 0)
    }

    /// A token for a user at `token_version`: it stops working once the
    /// user's version moves past it.
    pub fn issue_with_version(
        &self,
        user_id: Uuid,
        role: Role,
        token_version: i32,
    ) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id,
            role,
            ver: token_version,
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + self.ttl.as_secs(),
        };
        Ok(encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        decode::<Claims>(token, &self.decoding, &self.validation).map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_signed_with_another_secret_or_tampered_is_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123", Duration::from_secs(60));
        let other = TokenKeys::new(b"another-secret-entirely", Duration::from_secs(60));
        let token = keys.issue(Uuid::nil(), Role::Customer).unwrap();
        assert_eq!(keys.verify(&token).unwrap().role, Role::Customer);
        assert!(other.verify(&token).is_err());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = String::from_utf8(engine.decode(&parts[1]).unwrap()).unwrap();
        parts[1] = engine.encode(payload.replace("customer", "admin"));
        assert!(keys.verify(&parts.join(".")).is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123", Duration::from_secs(0));
        // Signed correctly, but expired well beyond the leeway.
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: Uuid::nil(),
            role: Role::Admin,
            ver: 0,
            iss: ISSUER.into(),
            iat: now - 120,
            exp: now - 60,
        };
        let expired = encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert!(keys.verify(&expired).is_err());
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123", Duration::from_secs(60));
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = engine.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let now = jsonwebtoken::get_current_timestamp();
        let payload = engine.encode(format!(
            r#"{{"sub":"{}","role":"admin","iss":"orderflow","iat":{now},"exp":{}}}"#,
            Uuid::nil(),
            now + 60
        ));
        assert!(keys.verify(&format!("{header}.{payload}.")).is_err());
    }

    #[test]
    fn a_token_carries_its_version_and_one_without_a_version_reads_as_zero() {
        let keys = TokenKeys::new(b"0123456789abcdef0123", Duration::from_secs(60));
        let token = keys
            .issue_with_version(Uuid::nil(), Role::Staff, 7)
            .unwrap();
        assert_eq!(keys.verify(&token).unwrap().ver, 7);
        let now = jsonwebtoken::get_current_timestamp();
        let legacy = serde_json::json!({"sub": Uuid::nil(), "role": "staff", "iss": ISSUER,
                                        "iat": now, "exp": now + 60});
        let legacy = encode(&Header::new(Algorithm::HS256), &legacy, &keys.encoding).unwrap();
        assert_eq!(keys.verify(&legacy).unwrap().ver, 0);
    }
}
