//! Errors as console pages: the API's refusal, with its status and its
//! message, in the console's chrome.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::console::layout::{render, sentence, Layout, Section};
use crate::console::session::{ConsoleUser, LOGIN_PATH};
use crate::error::ApiError;

#[derive(Template)]
#[template(path = "console/problem.html")]
struct ProblemPage {
    layout: Layout,
    heading: &'static str,
    message: String,
}

/// The page for `err`, shown to `user` (or to nobody signed in). A session
/// that lapsed while the page was in use is sent to sign in again.
pub fn page(user: Option<&ConsoleUser>, err: &ApiError) -> Response {
    let status = err.status();
    if status == StatusCode::UNAUTHORIZED {
        return Redirect::to(LOGIN_PATH).into_response();
    }
    let heading = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
        StatusCode::CONFLICT => "Conflict",
        s if s.is_client_error() => "Invalid request",
        _ => "Something went wrong",
    };
    let message = match err {
        ApiError::Forbidden => "Your role may not open this page.".to_owned(),
        other => sentence(&other.public_detail()),
    };
    let mut response = render(
        status,
        &ProblemPage {
            layout: Layout::new(user, Section::None, heading),
            heading,
            message,
        },
    );
    let retry_after = match err {
        ApiError::TooManyRequests {
            retry_after_seconds,
            ..
        } => Some((*retry_after_seconds).max(1)),
        ApiError::Unavailable {
            retry_after_seconds,
            ..
        } => Some(u64::from(*retry_after_seconds)),
        _ => None,
    };
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The 403 page for a console POST whose CSRF token is missing or wrong.
pub fn csrf_refused(user: &ConsoleUser) -> Response {
    render(
        StatusCode::FORBIDDEN,
        &ProblemPage {
            layout: Layout::new(Some(user), Section::None, "Not allowed"),
            heading: "Not allowed",
            message:
                "The form was not sent from this console session. Reload the page and try again."
                    .to_owned(),
        },
    )
}
