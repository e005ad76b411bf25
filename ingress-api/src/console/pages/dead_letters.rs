//! `GET /console/webhooks/dead-letters` (admin): dead deliveries over all
//! webhooks, as `GET /webhooks/dead-letters` lists them, each with a Replay
//! button that calls the same function as
//! `POST /webhooks/deliveries/{id}/replay`.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use crate::console::layout::{render, sentence, Layout, Section};
use crate::console::notice::{self, Notice};
use crate::console::problem;
use crate::console::session::ConsoleUser;
use crate::error::ApiError;
use crate::http::webhooks::{self, Delivery, PageQuery};
use crate::state::AppState;

/// Deliveries a page shows.
const PAGE_SIZE: i64 = 50;

/// The page every replay returns to.
const PATH: &str = "/console/webhooks/dead-letters";

#[derive(Template)]
#[template(path = "console/dead_letters.html")]
struct DeadLettersPage {
    layout: Layout,
    deliveries: Vec<Delivery>,
    next_page: Option<String>,
    notice: Option<&'static str>,
    /// Why the last replay was refused.
    error: Option<String>,
    /// Every dead delivery gets a Replay button.
    replayable: bool,
    csrf: String,
}

#[derive(Debug, Deserialize)]
pub struct DeadLettersFilter {
    pub cursor: Option<String>,
}

async fn dead_letters_page(
    state: &AppState,
    user: &ConsoleUser,
    status: StatusCode,
    cursor: Option<String>,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let query = PageQuery {
        cursor,
        limit: Some(PAGE_SIZE),
    };
    let page = match webhooks::dead_letters(state, &user.auth, query).await {
        Ok(page) => page,
        Err(err) => return problem::page(Some(user), &err),
    };
    let next_page = page.next_cursor.map(|cursor| {
        format!(
            "{PATH}?{}",
            serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default()
        )
    });
    render(
        status,
        &DeadLettersPage {
            layout: Layout::new(Some(user), Section::Webhooks, "Dead letters"),
            deliveries: page.items,
            next_page,
            notice,
            error,
            replayable: true,
            csrf: user.csrf.clone(),
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    filter: Result<Query<DeadLettersFilter>, QueryRejection>,
) -> Response {
    let Ok(Query(filter)) = filter else {
        return problem::page(
            Some(&user),
            &ApiError::field("query", "must be cursor=<a cursor this page linked>"),
        );
    };
    let shown = notice::read(&headers);
    let response = dead_letters_page(
        &state,
        &user,
        StatusCode::OK,
        filter.cursor,
        shown.map(Notice::message),
        None,
    )
    .await;
    notice::consume(&state, shown, response)
}

#[derive(Debug, Default, Deserialize)]
pub struct ReplayInput {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/webhooks/dead-letters/{id}/replay`: 303 back with "Replay
/// queued"; 409 (no longer dead) with the page and the refusal in an alert.
pub async fn replay(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    input: Result<Form<ReplayInput>, FormRejection>,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    match webhooks::replay(&state, &user.auth, &id).await {
        Ok(_) => notice::redirect(&state, PATH, Notice::ReplayQueued),
        Err(err @ ApiError::Conflict(_)) => {
            let message = sentence(&err.public_detail());
            dead_letters_page(&state, &user, err.status(), None, None, Some(message)).await
        }
        Err(err) => problem::page(Some(&user), &err),
    }
}
