//! Locations (warehouses, bins): `POST /locations`, `GET /locations`,
//! `PATCH /locations/{code}` and `POST /locations/{code}/archive`.
//!
//! A location is archived only when it holds nothing, so archived locations
//! never hold stock: stock operations refuse them, and the processor never
//! allocates from them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{patch, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_core::domain::{Role, Sku};
use orderflow_core::limits::MAX_NAME_LEN;
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::cursor;
use crate::http::orders::page_limit;
use crate::json_body::JsonBody;
use crate::path_params::PathParams;
use crate::query_params::QueryParams;
use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create_location, list_locations, rename_location, archive_location))]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/locations", post(create_location).get(list_locations))
        .route("/locations/{code}", patch(rename_location))
        .route("/locations/{code}/archive", post(archive_location))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLocation {
    /// `[A-Za-z0-9._-]{1,64}`, unique.
    pub code: String,
    /// 1 to 200 characters.
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationRename {
    /// 1 to 200 characters.
    pub name: String,
}

/// A location with the stock it holds over all products.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct LocationView {
    pub code: String,
    pub name: String,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

const LOCATION_VIEW: &str =
    "select l.code, l.name, l.archived_at is not null as archived, l.created_at,
        coalesce(t.on_hand, 0)::int8 as on_hand, coalesce(t.reserved, 0)::int8 as reserved,
        coalesce(t.on_hand - t.reserved, 0)::int8 as available
    from locations l
    left join lateral (select sum(on_hand) as on_hand, sum(reserved) as reserved
                       from stock_levels s where s.location_id = l.id) t on true";

async fn location_view(executor: impl PgExecutor<'_>, code: &str) -> ApiResult<LocationView> {
    sqlx::query_as(&format!("{LOCATION_VIEW} where l.code = $1"))
        .bind(code)
        .fetch_optional(executor)
        .await?
        .ok_or(ApiError::NotFound("location"))
}

fn check_name(name: &str, errors: &mut Vec<FieldError>) {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME_LEN {
        errors.push(
            FieldError::new("name", format!("must be 1 to {MAX_NAME_LEN} characters"))
                .with_limit(MAX_NAME_LEN as i64),
        );
    }
}

/// Add a location (manager).
#[utoipa::path(post, path = "/locations", tag = "locations", request_body = NewLocation,
    responses((status = 201, body = LocationView), (status = 403, body = crate::error::Problem),
              (status = 409, description = "code taken", body = crate::error::Problem),
              (status = 422, description = "Bad code or name", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_location(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(new): JsonBody<NewLocation>,
) -> ApiResult<(StatusCode, Json<LocationView>)> {
    user.require(Role::Manager)?;
    let mut errors = Vec::new();
    // Location codes follow the sku format: short, URL-safe, unambiguous.
    if let Err(e) = Sku::parse(&new.code) {
        errors.push(FieldError::new("code", e.message));
    }
    check_name(&new.name, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let location: LocationView = sqlx::query_as(
        "insert into locations (code, name) values ($1, $2)
         returning code, name, false as archived, created_at,
                   0::int8 as on_hand, 0::int8 as reserved, 0::int8 as available",
    )
    .bind(&new.code)
    .bind(new.name.trim())
    .fetch_one(&state.pool)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.constraint() == Some("locations_code_key") => {
            ApiError::Conflict(format!("a location with code {} already exists", new.code))
        }
        _ => err.into(),
    })?;
    Ok((StatusCode::CREATED, Json(location)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct LocationQuery {
    /// Archived locations too; true when absent.
    pub include_archived: Option<bool>,
    pub cursor: Option<String>,
    /// 1 to 200; 50 when absent.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocationPage {
    pub items: Vec<LocationView>,
    pub next_cursor: Option<String>,
}

/// Locations with their stock totals, ordered by code (staff).
#[utoipa::path(get, path = "/locations", tag = "locations", params(LocationQuery),
    responses((status = 200, body = LocationPage), (status = 403, body = crate::error::Problem),
              (status = 422, description = "Bad limit or cursor", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_locations(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(query): QueryParams<LocationQuery>,
) -> ApiResult<Json<LocationPage>> {
    locations_page(&state, &user, query).await.map(Json)
}

/// One page of locations, as `GET /locations` answers it (staff).
pub async fn locations_page(
    state: &AppState,
    user: &AuthUser,
    query: LocationQuery,
) -> ApiResult<LocationPage> {
    user.require(Role::Staff)?;
    let limit = page_limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(cursor::decode_text)
        .transpose()?;
    let mut items: Vec<LocationView> = sqlx::query_as(&format!(
        "{LOCATION_VIEW}
         where ($1::text is null or l.code > $1) and ($2 or l.archived_at is null)
         order by l.code limit $3"
    ))
    .bind(after)
    .bind(query.include_archived.unwrap_or(true))
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let next_cursor = cursor::next_page(&mut items, limit, |l| cursor::encode_text(&l.code));
    Ok(LocationPage { items, next_cursor })
}

/// Rename a location (manager). Archived locations are kept as they were.
#[utoipa::path(patch, path = "/locations/{code}", tag = "locations", params(("code" = String, Path)),
    request_body = LocationRename,
    responses((status = 200, body = LocationView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "The location is archived", body = crate::error::Problem),
              (status = 422, description = "Bad name", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn rename_location(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(code): PathParams<String>,
    JsonBody(rename): JsonBody<LocationRename>,
) -> ApiResult<Json<LocationView>> {
    user.require(Role::Manager)?;
    let mut errors = Vec::new();
    check_name(&rename.name, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut tx = state.pool.begin().await?;
    let archived: bool = sqlx::query_scalar(
        "select archived_at is not null from locations where code = $1 for no key update",
    )
    .bind(&code)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("location"))?;
    if archived {
        return Err(ApiError::Conflict(format!(
            "location {code} is archived; archived locations are kept as they were"
        )));
    }
    sqlx::query("update locations set name = $2 where code = $1")
        .bind(&code)
        .bind(rename.name.trim())
        .execute(&mut *tx)
        .await?;
    let location = location_view(&mut *tx, &code).await?;
    tx.commit().await?;
    Ok(Json(location))
}

/// Archive a location that holds nothing (manager): nothing on hand and
/// nothing reserved for any product. Archiving twice is fine.
#[utoipa::path(post, path = "/locations/{code}/archive", tag = "locations", params(("code" = String, Path)),
    responses((status = 200, body = LocationView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "The location still holds stock", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn archive_location(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(code): PathParams<String>,
) -> ApiResult<Json<LocationView>> {
    user.require(Role::Manager)?;
    let mut tx = state.pool.begin().await?;
    // The location row first: stock operations hold it `for share` while
    // they work, so none is half way through receiving or moving stock here.
    let (location_id, archived): (i64, bool) = sqlx::query_as(
        "select id, archived_at is not null from locations where code = $1 for no key update",
    )
    .bind(&code)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("location"))?;
    if !archived {
        // Then its stock rows, in product order: a sub-sequence of the
        // (product, location) order every writer locks in.
        let (on_hand, reserved): (i64, i64) = sqlx::query_as(
            "select coalesce(sum(on_hand), 0)::int8, coalesce(sum(reserved), 0)::int8 from (
                select on_hand, reserved from stock_levels where location_id = $1
                order by product_id for update) held",
        )
        .bind(location_id)
        .fetch_one(&mut *tx)
        .await?;
        if on_hand != 0 || reserved != 0 {
            return Err(ApiError::Conflict(format!(
                "location {code} still holds {on_hand} units on hand ({reserved} reserved); \
                 ship, transfer or adjust them out first"
            )));
        }
        sqlx::query("update locations set archived_at = now() where id = $1")
            .bind(location_id)
            .execute(&mut *tx)
            .await?;
    }
    let location = location_view(&mut *tx, &code).await?;
    tx.commit().await?;
    Ok(Json(location))
}
