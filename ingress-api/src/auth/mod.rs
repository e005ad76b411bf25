//! Who is calling: passwords, login throttling, access tokens, revoked
//! tokens, and the `AuthUser` and `AdminUser` extractors.

pub mod login_throttle;
pub mod password;
pub mod revocation;
pub mod token;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use orderflow_core::domain::Role;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller, from a valid bearer token that was not revoked.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    /// The user's id.
    pub id: Uuid,
    /// The role the token was issued with; a role change revokes the token,
    /// so it is the user's current role (within the refresh delay of
    /// [`revocation`]).
    pub role: Role,
    /// The token's version, to tell later whether it has been revoked since.
    pub token_version: i32,
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
        // The rate limiter verified this request's token already: only the
        // revocation check is left, not a second signature check.
        if let Some(VerifiedToken(user)) = parts.extensions.get::<VerifiedToken>().copied() {
            return match user.still_honoured(state) {
                true => Ok(user),
                false => Err(ApiError::Unauthorized("the token was revoked")),
            };
        }
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
        AuthUser::from_token(state, token)
    }
}

/// The caller of a bearer token whose signature and expiry an earlier layer
/// (the rate limiter, which keys clients by user) has verified, left in the
/// request's extensions so [`AuthUser`]'s extractor does not verify it again.
/// Revocation is still checked by the extractor.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedToken(pub AuthUser);

impl AuthUser {
    /// The caller a token claims, if its signature and expiry are valid;
    /// not yet checked against revocations.
    pub fn verified(state: &AppState, token: &str) -> Option<Self> {
        let claims = state.tokens.verify(token.trim()).ok()?;
        Some(AuthUser {
            id: claims.sub,
            role: claims.role,
            token_version: claims.ver,
        })
    }

    /// Authenticates a raw access token: valid signature and expiry, and not
    /// revoked.
    pub fn from_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let user = AuthUser::verified(state, token)
            .ok_or(ApiError::Unauthorized("the token is invalid or expired"))?;
        if !user.still_honoured(state) {
            return Err(ApiError::Unauthorized("the token was revoked"));
        }
        Ok(user)
    }

    /// Whether the token this caller authenticated with has not been revoked
    /// since. In memory, never a query: every route, POST /orders included,
    /// keeps working while the database is down.
    pub fn still_honoured(&self, state: &AppState) -> bool {
        !state.revocations.refuses(self.id, self.token_version)
    }
}

/// An authenticated admin: 401 without a valid token, 403 for other roles.
/// Placed before the body extractor, it refuses before the body is read, so
/// a caller without the role learns nothing about the body's shape.
#[derive(Debug, Clone, Copy)]
pub struct AdminUser(pub AuthUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        user.require(Role::Admin)?;
        Ok(AdminUser(user))
    }
}
