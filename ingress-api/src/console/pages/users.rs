//! `GET /console/users` (admin): the accounts, as `GET /users` lists them.

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
use crate::http::users::UserDetail;
use crate::http::users_admin::{self, UserQuery};
use crate::state::AppState;

/// Users a page shows.
const PAGE_SIZE: i64 = 100;

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserDetail>,
    next_page: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UsersFilter {
    pub cursor: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    filter: Result<Query<UsersFilter>, QueryRejection>,
) -> Response {
    let Ok(Query(filter)) = filter else {
        return problem::page(
            Some(&user),
            &ApiError::field("query", "must be cursor=<a cursor this page linked>"),
        );
    };
    let query = UserQuery {
        role: None,
        active: None,
        cursor: filter.cursor,
        limit: Some(PAGE_SIZE),
    };
    let page = match users_admin::users_page(&state, &user.auth, query).await {
        Ok(page) => page,
        Err(err) => return problem::page(Some(&user), &err),
    };
    let next_page = page.next_cursor.map(|cursor| {
        format!(
            "/console/users?{}",
            serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default()
        )
    });
    render(
        StatusCode::OK,
        &UsersPage {
            layout: Layout::new(Some(&user), Section::Users, "Users"),
            users: page.items,
            next_page,
        },
    )
}
