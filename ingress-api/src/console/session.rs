//! The console's session: the access token that `POST /console/login` issues
//! (the same token `POST /auth/login` answers), kept in an `HttpOnly;
//! SameSite=Strict` cookie, and [`ConsoleUser`], the signed-in user it names.
//!
//! A token that is expired or revoked counts as no session at all. The
//! cookie only ever authenticates console routes: the JSON API reads bearer
//! tokens alone, so no cross-site request can ride on the cookie there.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use orderflow_core::domain::Role;

use crate::auth::AuthUser;
use crate::console::{csrf, problem};
use crate::error::ApiError;
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "orderflow_session";

/// Where a request without a session is sent.
pub const LOGIN_PATH: &str = "/console/login";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// The session token the request carries, if any; not yet checked.
pub fn token_in(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// The user of the request's session: a valid token that was not revoked.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Option<AuthUser> {
    AuthUser::from_token(state, token_in(headers)?).ok()
}

/// A `Set-Cookie` value for a cookie of the console: `HttpOnly`,
/// `SameSite=Strict`, for the whole site, `Secure` in production.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_seconds: u64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_seconds}{secure}"
    );
    HeaderValue::from_str(&cookie).expect("cookie values are tokens and codes, all visible ASCII")
}

/// A `Set-Cookie` value that removes cookie `name`.
pub fn clear_cookie(state: &AppState, name: &str) -> HeaderValue {
    set_cookie(state, name, "", 0)
}

/// The signed-in console user: staff, a manager or an admin with a valid
/// session. Without one, the request is sent to the sign-in page; a
/// customer's session is refused with 403.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    /// Who the session's token names, with the role it was issued for.
    pub auth: AuthUser,
    /// The user's email, shown in the page header.
    pub email: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// The session's token, which the CSRF token is checked against.
    token: String,
}

impl ConsoleUser {
    /// Whether `presented` is this session's CSRF token.
    pub fn csrf_matches(&self, state: &AppState, presented: &str) -> bool {
        csrf::matches(state, &self.token, presented)
    }

    pub fn is_admin(&self) -> bool {
        self.auth.role.includes(Role::Admin)
    }
}

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(auth) = authenticate(state, &parts.headers) else {
            return Err(Redirect::to(LOGIN_PATH).into_response());
        };
        if !auth.role.includes(Role::Staff) {
            return Err(problem::page(None, &ApiError::Forbidden));
        }
        let token = token_in(&parts.headers).unwrap_or_default().to_owned();
        // The token names the user by id; the header shows the email. An
        // account deleted since (accounts are deactivated, not deleted, so
        // this is a safeguard) has no session.
        let email: Option<String> = sqlx::query_scalar("select email from users where id = $1")
            .bind(auth.id)
            .fetch_optional(&state.pool)
            .await
            .map_err(|err| problem::page(None, &ApiError::from(err)))?;
        let Some(email) = email else {
            return Err(Redirect::to(LOGIN_PATH).into_response());
        };
        Ok(ConsoleUser {
            auth,
            email,
            csrf: csrf::token_for(state, &token),
            token,
        })
    }
}
