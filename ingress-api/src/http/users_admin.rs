//! Administering users: `GET /users`, `POST /users`, `PATCH /users/{id}`, and changing one's own password.
//!
//! Deactivating a user, changing their role or their password bumps their
//! `token_version`, which revokes every token issued before: see
//! [`crate::auth::revocation`]. The change applies at once on the replica
//! that made it and within about a second on the others.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_core::domain::Role;
use orderflow_core::limits::MAX_PASSWORD_LEN;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::revocation::Standing;
use crate::auth::{password, AdminUser, AuthUser};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::cursor;
use crate::http::orders::page_limit;
use crate::http::users::{self, TokenResponse, UserDetail};
use crate::json_body::JsonBody;
use crate::path_params::PathParams;
use crate::query_params::QueryParams;
use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_users, create_user, update_user, change_password))]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", patch(update_user))
        .route("/auth/password", post(change_password))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UserQuery {
    /// Only users of this role: `admin`, `manager`, `staff` or `customer`.
    pub role: Option<String>,
    /// Only active (true) or deactivated (false) users.
    pub active: Option<bool>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserDetail>,
    /// Absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    /// `admin`, `manager`, `staff` or `customer`.
    pub role: String,
}

/// What to change; at least one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// The new role; a different role revokes the user's tokens.
    pub role: Option<String>,
    /// false deactivates the user and revokes their tokens; true lets them
    /// sign in again (their old tokens stay revoked).
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// A user row as read: id, email, role, active, created_at.
type UserRow = (Uuid, String, String, bool, DateTime<Utc>);

fn detail((id, email, role, active, created_at): UserRow) -> ApiResult<UserDetail> {
    let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("stored role {role}: {e}"))?;
    Ok(UserDetail {
        id,
        email,
        role,
        active,
        created_at,
    })
}

fn parse_role(raw: &str) -> Result<Role, FieldError> {
    Role::parse(raw).map_err(|e| FieldError::new("role", e.message))
}

/// List users (admin), ordered by email.
#[utoipa::path(get, path = "/users", tag = "users", params(UserQuery),
    responses((status = 200, body = UserPage), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_users(
    admin: AdminUser,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<UserQuery>,
) -> ApiResult<Json<UserPage>> {
    users_page(&state, &admin.0, query).await.map(Json)
}

/// One page of users, ordered by email, as `GET /users` answers it (admin).
pub async fn users_page(
    state: &AppState,
    user: &AuthUser,
    query: UserQuery,
) -> ApiResult<UserPage> {
    user.require(Role::Admin)?;
    let limit = page_limit(query.limit)?;
    let role = query
        .role
        .as_deref()
        .map(parse_role)
        .transpose()
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let after = query
        .cursor
        .as_deref()
        .map(cursor::decode_text)
        .transpose()?;
    let rows: Vec<UserRow> = sqlx::query_as(
        "select id, email, role, active, created_at from users
         where ($1::text is null or email > $1)
           and ($2::text is null or role = $2)
           and ($3::bool is null or active = $3)
         order by email limit $4",
    )
    .bind(after)
    .bind(role.map(Role::as_str))
    .bind(query.active)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let mut items = rows
        .into_iter()
        .map(detail)
        .collect::<ApiResult<Vec<_>>>()?;
    let next_cursor = cursor::next_page(&mut items, limit, |u| cursor::encode_text(&u.email));
    Ok(UserPage { items, next_cursor })
}

/// Create a user of any role (admin), for example staff or a manager.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = UserDetail), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem),
              (status = 409, description = "Email taken", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_user(
    admin: AdminUser,
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewUser>,
) -> ApiResult<(StatusCode, Json<UserDetail>)> {
    let user = create_account(&state, &admin.0, new).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Creates a user of any role, as `POST /users` does (admin): every field's
/// refusal at once, 409 when the email is taken.
pub async fn create_account(
    state: &AppState,
    user: &AuthUser,
    new: NewUser,
) -> ApiResult<UserDetail> {
    user.require(Role::Admin)?;
    let email = users::parse_email(&new.email);
    let role = parse_role(&new.role);
    let errors: Vec<FieldError> = [
        email.clone().err(),
        users::check_password(&new.password).err(),
        role.clone().err(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    users::create_user(
        &state.pool,
        &email.expect("checked"),
        &new.password,
        role.expect("checked"),
    )
    .await
}

/// Change a user's role or deactivate or reactivate them (admin). A role
/// change or a deactivation revokes the user's tokens. Refused with 409 when
/// it would leave no active admin.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = UserChange,
    params(("id" = Uuid, Path, description = "The user's id")),
    responses((status = 200, body = UserDetail), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "No active admin would remain", body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn update_user(
    admin: AdminUser,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonBody(change): JsonBody<UserChange>,
) -> ApiResult<Json<UserDetail>> {
    change_user(&state, &admin.0, &id, change).await.map(Json)
}

/// Changes a user's role or whether they are active, as `PATCH /users/{id}`
/// does (admin): 404 for an unknown id, 409 when no active admin would
/// remain.
pub async fn change_user(
    state: &AppState,
    user: &AuthUser,
    id: &str,
    change: UserChange,
) -> ApiResult<UserDetail> {
    user.require(Role::Admin)?;
    // An id that is not a UUID names no user.
    let id = Uuid::parse_str(id).map_err(|_| ApiError::NotFound("user"))?;
    if change.role.is_none() && change.active.is_none() {
        return Err(ApiError::field(
            "body",
            "must change role or active, or both",
        ));
    }
    let new_role = change
        .role
        .as_deref()
        .map(parse_role)
        .transpose()
        .map_err(|e| ApiError::Validation(vec![e]))?;

    let mut tx = state.pool.begin().await?;
    // The active admins are locked first, always in id order, then the
    // target: two admins demoting each other at the same moment are taken
    // one after the other (the second sees no other admin left) and never
    // deadlock. Admins promoted by a transaction that commits meanwhile may
    // be missed, which can only refuse a change, never allow a wrong one.
    let admins: Vec<Uuid> = sqlx::query_scalar(
        "select id from users where role = 'admin' and active order by id for update",
    )
    .fetch_all(&mut *tx)
    .await?;
    let (role, active): (String, bool) =
        sqlx::query_as("select role, active from users where id = $1 for update")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(ApiError::NotFound("user"))?;
    let new_role = new_role.map(Role::as_str).unwrap_or(&role).to_owned();
    let new_active = change.active.unwrap_or(active);
    let was_admin = role == Role::Admin.as_str() && active;
    let stays_admin = new_role == Role::Admin.as_str() && new_active;
    if was_admin && !stays_admin && !admins.iter().any(|admin| *admin != id) {
        return Err(ApiError::Conflict(
            "this is the last active admin; make another user an admin first".into(),
        ));
    }
    // A new role or a deactivation revokes the tokens issued before (the
    // role is in the token); a reactivation does not bring them back.
    let (row, token_version, updated_at): (UserRow, i32, DateTime<Utc>) = sqlx::query_as::<
        _,
        (
            Uuid,
            String,
            String,
            bool,
            DateTime<Utc>,
            i32,
            DateTime<Utc>,
        ),
    >(
        "update users
            set role = $2, active = $3,
                token_version = token_version
                    + case when role <> $2 or (active and not $3) then 1 else 0 end
          where id = $1
          returning id, email, role, active, created_at, token_version, updated_at",
    )
    .bind(id)
    .bind(&new_role)
    .bind(new_active)
    .fetch_one(&mut *tx)
    .await
    .map(
        |(id, email, role, active, created_at, version, updated_at)| {
            ((id, email, role, active, created_at), version, updated_at)
        },
    )?;
    tx.commit().await?;
    let user = detail(row)?;
    state.revocations.apply(
        user.id,
        Standing {
            active: user.active,
            token_version,
            updated_at,
        },
    );
    tracing::info!(user_id = %user.id, role = user.role.as_str(), active = user.active, "user changed");
    Ok(user)
}

/// Change one's own password (any signed-in user). Every token issued to
/// the caller before, the one used for this request included, is revoked;
/// the answer carries a fresh token. Setting the same password again is
/// allowed and signs out every other session.
#[utoipa::path(post, path = "/auth/password", tag = "auth", request_body = PasswordChange,
    responses((status = 200, description = "A fresh token; all earlier tokens of the caller are revoked",
               body = TokenResponse),
              (status = 401, description = "Wrong current password, or no valid token", body = crate::error::Problem),
              (status = 409, description = "Changed by another request meanwhile", body = crate::error::Problem),
              (status = 422, description = "The new password is invalid", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn change_password(
    user: AuthUser,
    State(state): State<AppState>,
    JsonBody(change): JsonBody<PasswordChange>,
) -> ApiResult<Json<TokenResponse>> {
    users::check_password(&change.new_password).map_err(|mut e| {
        e.field = "new_password".into();
        ApiError::Validation(vec![e])
    })?;
    let wrong = || ApiError::Unauthorized("the current password is wrong");
    if change.current_password.len() > MAX_PASSWORD_LEN * 4 {
        return Err(wrong());
    }
    let stored: Option<String> =
        sqlx::query_scalar("select password_hash from users where id = $1 and active")
            .bind(user.id)
            .fetch_optional(&state.pool)
            .await?;
    if !password::verify(change.current_password, stored.clone()).await? {
        return Err(wrong());
    }
    let hash = password::hash(change.new_password).await?;
    // Only over the hash just checked: of two changes at once, the second
    // finds the password already changed and is refused.
    let changed: Option<(String, bool, i32, DateTime<Utc>)> = sqlx::query_as(
        "update users set password_hash = $2, token_version = token_version + 1
          where id = $1 and password_hash = $3 and active
          returning role, active, token_version, updated_at",
    )
    .bind(user.id)
    .bind(&hash)
    .bind(stored)
    .fetch_optional(&state.pool)
    .await?;
    let Some((role, active, token_version, updated_at)) = changed else {
        return Err(ApiError::Conflict(
            "the password was changed meanwhile; sign in again".into(),
        ));
    };
    state.revocations.apply(
        user.id,
        Standing {
            active,
            token_version,
            updated_at,
        },
    );
    let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("stored role {role}: {e}"))?;
    tracing::info!(user_id = %user.id, "password changed");
    Ok(Json(users::token_response(
        &state,
        user.id,
        role,
        token_version,
    )?))
}
