//! `GET /console/events`: the API's live event stream
//! ([`crate::http::events`]) for the console's feed, authenticated by the
//! session cookie, which a browser's EventSource sends by itself. Without a
//! session it is 401, not a redirect: an event stream has no page to show.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use orderflow_core::domain::Role;

use crate::console::session;
use crate::error::ApiError;
use crate::http::events;
use crate::state::AppState;

pub async fn stream(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(user) = session::authenticate(&state, &headers) else {
        return ApiError::Unauthorized("sign in to the console first").into_response();
    };
    if let Err(err) = user.require(Role::Staff) {
        return err.into_response();
    }
    let resume_after = match events::resume_point(&headers) {
        Ok(resume_after) => resume_after,
        Err(err) => return err.into_response(),
    };
    events::open(state, user, resume_after)
        .await
        .into_response()
}
