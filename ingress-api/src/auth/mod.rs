//! Who is calling: passwords, access tokens, and the `AuthUser` extractor.

pub mod password;
pub mod token;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use orderflow_core::domain::Role;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller, from a valid bearer token.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub id: Uuid,
    pub role: Role,
}

impl AuthUser {
    /// Refuses with 403 unless the caller's role includes `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role.includes(role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// Whether the caller may see what `owner` owns: their own things, or
    /// anything for staff and above.
    pub fn may_see(&self, owner: Uuid) -> bool {
        self.id == owner || self.role.includes(Role::Staff)
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthorized(
                "an Authorization: Bearer token is required",
            ))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized(
                "the Authorization header must be Bearer <token>",
            ))?;
        let claims = state
            .tokens
            .verify(token.trim())
            .map_err(|_| ApiError::Unauthorized("the token is invalid or expired"))?;
        Ok(AuthUser {
            id: claims.sub,
            role: claims.role,
        })
    }
}
