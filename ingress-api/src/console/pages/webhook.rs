//! `GET /console/webhooks/{id}` (manager, admin): the endpoint's deliveries,
//! newest first, each with every attempt, as
//! `GET /webhooks/{id}/deliveries` reads them.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::console::layout::{render, Layout, Section};
use crate::console::problem;
use crate::console::session::ConsoleUser;
use crate::error::ApiError;
use crate::http::webhooks::{self, Delivery, DeliveryQuery};
use crate::state::AppState;

/// Deliveries a page shows.
const PAGE_SIZE: i64 = 50;

#[derive(Template)]
#[template(path = "console/webhook.html")]
struct WebhookPage {
    layout: Layout,
    /// The endpoint's URL, the page's heading.
    url: String,
    deliveries: Vec<Delivery>,
    next_page: Option<String>,
    /// Deliveries here get no Replay button: replays are the dead letters'.
    replayable: bool,
    csrf: String,
}

#[derive(Debug, Deserialize)]
pub struct DeliveriesFilter {
    pub cursor: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    filter: Result<Query<DeliveriesFilter>, QueryRejection>,
) -> Response {
    let Ok(Query(filter)) = filter else {
        return problem::page(
            Some(&user),
            &ApiError::field("query", "must be cursor=<a cursor this page linked>"),
        );
    };
    let query = DeliveryQuery {
        state: None,
        cursor: filter.cursor,
        limit: Some(PAGE_SIZE),
    };
    let page = match webhooks::deliveries(&state, &user.auth, &id, query).await {
        Ok(page) => page,
        Err(err) => return problem::page(Some(&user), &err),
    };
    // The deliveries call has checked the role and that the webhook exists;
    // the URL comes from the same list the webhooks page shows.
    let url = match webhooks::webhooks(&state, &user.auth).await {
        Ok(list) => list
            .into_iter()
            .find(|w| w.id.to_string() == id.to_lowercase())
            .map(|w| w.url),
        Err(err) => return problem::page(Some(&user), &err),
    };
    let Some(url) = url else {
        return problem::page(Some(&user), &ApiError::NotFound("webhook"));
    };
    let next_page = page.next_cursor.map(|cursor| {
        format!(
            "/console/webhooks/{id}?{}",
            serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default()
        )
    });
    render(
        StatusCode::OK,
        &WebhookPage {
            layout: Layout::new(Some(&user), Section::Webhooks, format!("Webhook {url}")),
            url,
            deliveries: page.items,
            next_page,
            replayable: false,
            csrf: user.csrf.clone(),
        },
    )
}
