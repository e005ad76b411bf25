//! `GET /console/alerts` (staff and above): the low-stock alerts of
//! `GET /alerts`, newest first, filtered by state and sku.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::console::layout::{render, Layout, Section};
use crate::console::problem;
use crate::console::session::ConsoleUser;
use crate::error::ApiError;
use crate::http::reports::{self, Alert, AlertQuery};
use crate::state::AppState;

/// Alerts a page shows.
const PAGE_SIZE: i64 = 50;

/// The state filter's choices, as (value, label); `all` is the console's
/// word for no filter, the others are the API's states.
const STATES: [(&str, &str); 3] = [
    ("active", "Active"),
    ("resolved", "Resolved"),
    ("all", "All"),
];

#[derive(Template)]
#[template(path = "console/alerts.html")]
struct AlertsPage {
    layout: Layout,
    filter: AlertFilter,
    states: [(&'static str, &'static str); 3],
    alerts: Vec<Alert>,
    next_page: Option<String>,
}

/// The filter form's fields as the browser sends them. Without a state the
/// page shows the active alerts, the ones someone may need to act on.
#[derive(Debug, Clone, Deserialize)]
pub struct AlertFilter {
    #[serde(default = "active")]
    pub state: String,
    #[serde(default)]
    pub sku: String,
    pub cursor: Option<String>,
}

fn active() -> String {
    "active".to_owned()
}

impl AlertFilter {
    fn query(&self) -> AlertQuery {
        let state = self.state.trim();
        AlertQuery {
            // Anything but `all` goes to the API as it is, to be refused
            // there in the API's words when it is no state.
            state: (state != "all").then(|| state.to_owned()),
            sku: Some(self.sku.trim().to_owned()).filter(|sku| !sku.is_empty()),
            cursor: self.cursor.clone(),
            limit: Some(PAGE_SIZE),
        }
    }

    /// The link to the page after this one.
    fn next_page(&self, cursor: String) -> String {
        let pairs = [
            ("state", self.state.clone()),
            ("sku", self.sku.clone()),
            ("cursor", cursor),
        ];
        format!(
            "/console/alerts?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    filter: Result<Query<AlertFilter>, QueryRejection>,
) -> Response {
    let Ok(Query(filter)) = filter else {
        return problem::page(
            Some(&user),
            &ApiError::field("query", "must be the filter form's state and sku"),
        );
    };
    let page = match reports::alerts_page(&state, &user.auth, filter.query()).await {
        Ok(page) => page,
        Err(err) => return problem::page(Some(&user), &err),
    };
    let next_page = page.next_cursor.map(|cursor| filter.next_page(cursor));
    render(
        StatusCode::OK,
        &AlertsPage {
            layout: Layout::new(Some(&user), Section::Alerts, "Low-stock alerts"),
            filter,
            states: STATES,
            alerts: page.items,
            next_page,
        },
    )
}
