//! Signing in and out: `GET`/`POST /console/login`, `POST /console/logout`.
//!
//! Sign-in checks the email and password exactly as `POST /auth/login` does
//! (the same function: same throttle, same messages) and keeps the token it
//! issues in the session cookie. Customers have no console.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use orderflow_core::domain::Role;
use serde::Deserialize;

use crate::console::layout::{render, sentence, Layout, Section};
use crate::console::problem;
use crate::console::session::{self, ConsoleUser, COOKIE, LOGIN_PATH};
use crate::error::ApiError;
use crate::http::users::{self, Credentials};
use crate::state::AppState;

/// Where a successful sign-in lands.
const HOME: &str = "/console";

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    layout: Layout,
    /// Kept after a failed attempt, so only the password is typed again.
    email: String,
    error: Option<String>,
}

fn login_page(status: StatusCode, email: String, error: Option<String>) -> Response {
    render(
        status,
        &LoginPage {
            layout: Layout::new(None, Section::None, "Sign in"),
            email,
            error,
        },
    )
}

/// `GET /console/login`; a signed-in user goes straight to the dashboard.
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session::authenticate(&state, &headers) {
        Some(user) if user.role.includes(Role::Staff) => Redirect::to(HOME).into_response(),
        _ => login_page(StatusCode::OK, String::new(), None),
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
}

/// `POST /console/login`: 303 to the dashboard with the session cookie set;
/// 401 with the form again for a wrong pair, 429 when the email's sign-ins
/// are throttled, 403 for customers.
pub async fn sign_in(
    State(state): State<AppState>,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return login_page(
            StatusCode::BAD_REQUEST,
            String::new(),
            Some("The sign-in form could not be read. Reload the page and try again.".into()),
        );
    };
    let credentials = Credentials {
        email: form.email.clone(),
        password: form.password,
    };
    let user = match users::check_credentials(&state, &credentials).await {
        Ok(user) => user,
        Err(err @ (ApiError::Unauthorized(_) | ApiError::TooManyRequests { .. })) => {
            let mut response = login_page(
                err.status(),
                form.email,
                Some(sentence(&err.public_detail())),
            );
            if let ApiError::TooManyRequests {
                retry_after_seconds,
                ..
            } = err
            {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, retry_after_seconds.max(1).into());
            }
            return response;
        }
        Err(err) => return problem::page(None, &err),
    };
    if !user.role.includes(Role::Staff) {
        return problem::page(None, &ApiError::Forbidden);
    }
    let token = match users::token_response(&state, user.id, user.role, user.token_version) {
        Ok(token) => token,
        Err(err) => return problem::page(None, &err),
    };
    let cookie = session::set_cookie(&state, COOKIE, &token.access_token, token.expires_in);
    let mut response = Redirect::to(HOME).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/logout`: forgets the session cookie. The token itself
/// stays valid until it expires (tokens are revoked per user, not one by
/// one), but no page holds it any more.
pub async fn sign_out(
    State(state): State<AppState>,
    user: ConsoleUser,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let presented = form.map(|Form(f)| f.csrf).unwrap_or_default();
    if !user.csrf_matches(&state, &presented) {
        return problem::csrf_refused(&user);
    }
    let mut response = Redirect::to(LOGIN_PATH).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie(&state, COOKIE));
    response
}
