//! `GET /console/users` (admin): the accounts, as `GET /users` lists them,
//! with the form that creates one and, per account, the forms that change
//! its role and deactivate or reactivate it (see
//! [`crate::console::pages::user_forms`]).

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use crate::console::layout::{render, Layout, Section};
use crate::console::pages::user_forms::Flash;
use crate::console::problem;
use crate::console::session::{self, ConsoleUser};
use crate::error::ApiError;
use crate::http::users::UserDetail;
use crate::http::users_admin::{self, UserQuery};
use crate::state::AppState;

/// Users a page shows.
const PAGE_SIZE: i64 = 100;

/// The roles the forms offer, as the API spells them, the most rights first.
const ROLES: [&str; 4] = ["admin", "manager", "staff", "customer"];

/// The role the create form starts with: the accounts admins create most.
const DEFAULT_ROLE: &str = "staff";

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    layout: Layout,
    rows: Vec<UserRow>,
    next_page: Option<String>,
    create: CreateForm,
    flash: Option<String>,
    roles: [&'static str; 4],
    /// The session's CSRF token, for every form of the page.
    csrf: String,
    /// The cursor of the page shown, carried by each row's forms so that a
    /// refusal shows the same page again.
    cursor: Option<String>,
}

/// One account of the table with its forms.
struct UserRow {
    user: UserDetail,
    /// The role the role form has selected: the account's, or the one just
    /// refused.
    selected_role: String,
    refusal: RowRefusal,
}

/// The API's refusal of one row's forms.
#[derive(Debug, Clone, Default)]
pub struct RowRefusal {
    /// A refusal of the role form's select.
    pub role_field: Option<String>,
    /// The role that was refused, kept selected.
    pub role_value: Option<String>,
    /// A refusal of the role form as a whole (the last active admin).
    pub role: Option<String>,
    /// A refusal of the deactivate or reactivate form.
    pub active: Option<String>,
}

/// The create form as shown: what was entered (never the password), and
/// the API's refusal of each field.
#[derive(Debug, Clone)]
pub struct CreateForm {
    pub email: String,
    pub role: String,
    pub email_error: Option<String>,
    pub password_error: Option<String>,
    pub role_error: Option<String>,
    /// A refusal of no field in the form.
    pub error: Option<String>,
}

impl Default for CreateForm {
    fn default() -> Self {
        CreateForm {
            email: String::new(),
            role: DEFAULT_ROLE.to_owned(),
            email_error: None,
            password_error: None,
            role_error: None,
            error: None,
        }
    }
}

/// What the users page shows besides the accounts.
#[derive(Debug, Default)]
pub struct PageState {
    /// The page of accounts to show.
    pub cursor: Option<String>,
    pub create: CreateForm,
    /// A refusal of the forms of the account with this id.
    pub row_refusal: Option<(Uuid, RowRefusal)>,
    pub flash: Option<String>,
}

/// The users page answered with `status`; a refusal of the listing itself
/// (a role that may not see it) is the error page instead.
pub async fn page(
    state: &AppState,
    user: &ConsoleUser,
    status: StatusCode,
    shown: PageState,
) -> Response {
    let query = UserQuery {
        role: None,
        active: None,
        cursor: shown.cursor.clone(),
        limit: Some(PAGE_SIZE),
    };
    let listed = match users_admin::users_page(state, &user.auth, query).await {
        Ok(listed) => listed,
        Err(err) => return problem::page(Some(user), &err),
    };
    let next_page = listed.next_cursor.map(|cursor| {
        format!(
            "/console/users?{}",
            serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default()
        )
    });
    let mut row_refusal = shown.row_refusal;
    let rows = listed
        .items
        .into_iter()
        .map(|user| {
            let refusal = match &row_refusal {
                Some((id, _)) if *id == user.id => row_refusal.take().map(|(_, r)| r),
                _ => None,
            }
            .unwrap_or_default();
            let selected_role = refusal
                .role_value
                .clone()
                .filter(|role| ROLES.contains(&role.as_str()))
                .unwrap_or_else(|| user.role.as_str().to_owned());
            UserRow {
                user,
                selected_role,
                refusal,
            }
        })
        .collect();
    render(
        status,
        &UsersPage {
            layout: Layout::new(Some(user), Section::Users, "Users"),
            rows,
            next_page,
            create: shown.create,
            flash: shown.flash,
            roles: ROLES,
            csrf: user.csrf.clone(),
            cursor: shown.cursor,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct UsersFilter {
    pub cursor: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    filter: Result<Query<UsersFilter>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Query(filter)) = filter else {
        return problem::page(
            Some(&user),
            &ApiError::field("query", "must be cursor=<a cursor this page linked>"),
        );
    };
    let flash = session::cookie(&headers, Flash::COOKIE).and_then(Flash::decode);
    let shown = PageState {
        cursor: filter.cursor,
        flash: flash.as_ref().map(Flash::message),
        ..PageState::default()
    };
    let mut response = page(&state, &user, StatusCode::OK, shown).await;
    if flash.is_some() && response.status() == StatusCode::OK {
        response.headers_mut().insert(
            header::SET_COOKIE,
            session::clear_cookie(&state, Flash::COOKIE),
        );
    }
    response
}
