//! `GET /console/orders`: the orders as `GET /orders` lists them for staff,
//! newest first, filtered by status, each linking to its page.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use orderflow_core::domain::OrderStatus;
use serde::Deserialize;

use crate::console::layout::{render, Layout, Section};
use crate::console::problem;
use crate::console::session::ConsoleUser;
use crate::error::ApiError;
use crate::http::orders::{self, ListOrdersParams};
use crate::order_records::OrderView;
use crate::state::AppState;

/// Orders a page shows.
const PAGE_SIZE: i64 = 50;

/// The statuses the filter offers, in the order an order passes them.
pub const STATUSES: [OrderStatus; 5] = [
    OrderStatus::Pending,
    OrderStatus::Confirmed,
    OrderStatus::Rejected,
    OrderStatus::Cancelled,
    OrderStatus::Fulfilled,
];

#[derive(Template)]
#[template(path = "console/orders.html")]
struct OrdersPage {
    layout: Layout,
    orders: Vec<OrderView>,
    statuses: Vec<&'static str>,
    /// The status filtered on; empty for all.
    status: String,
    next_page: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OrdersFilter {
    pub status: Option<String>,
    pub cursor: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    filter: Result<Query<OrdersFilter>, QueryRejection>,
) -> Response {
    let Ok(Query(filter)) = filter else {
        return problem::page(
            Some(&user),
            &ApiError::field("query", "must be status=<a status>&cursor=<a cursor>"),
        );
    };
    // "All statuses" sends an empty status.
    let status = filter.status.filter(|s| !s.is_empty());
    let params = ListOrdersParams {
        status: status.clone(),
        cursor: filter.cursor,
        limit: Some(PAGE_SIZE),
    };
    let page = match orders::orders_page(&state, &user.auth, params).await {
        Ok(page) => page,
        Err(err) => return problem::page(Some(&user), &err),
    };
    let status = status.unwrap_or_default();
    let next_page = page.next_cursor.map(|cursor| {
        let mut query = vec![("cursor", cursor)];
        if !status.is_empty() {
            query.push(("status", status.clone()));
        }
        format!(
            "/console/orders?{}",
            serde_urlencoded::to_string(query).unwrap_or_default()
        )
    });
    render(
        StatusCode::OK,
        &OrdersPage {
            layout: Layout::new(Some(&user), Section::Orders, "Orders"),
            orders: page.items,
            statuses: STATUSES.iter().map(|s| s.as_str()).collect(),
            status,
            next_page,
        },
    )
}
