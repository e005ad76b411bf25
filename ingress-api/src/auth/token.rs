//! Access tokens: HS256 JWTs with the user's id and role.

use std::time::Duration;

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use orderflow_core::domain::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const ISSUER: &str = "orderflow";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
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
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, user_id: Uuid, role: Role) -> anyhow::Result<String> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id,
            role,
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
}
