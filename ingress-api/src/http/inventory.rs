//! Stock operations (`POST /inventory/receive`, `ship`, `transfer`, `adjust`)
//! and the stock reads (`GET /inventory`, `GET /movements`), all for staff.
//!
//! Each operation validates its body, then hands [`stock::operate`] a plan:
//! the movements to write once the product's stock rows are locked, or the
//! refusal the locked stock calls for.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_core::domain::Role;
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::cursor;
use crate::http::orders::page_limit;
use crate::json_body::JsonBody;
use crate::query_params::QueryParams;
use crate::state::AppState;
use crate::stock::{self, Movement, MovementKind, Operation, ADJUST_REASONS, MOVEMENT_KINDS};

pub use crate::stock::StockLevel;

/// The least a receipt may bring in.
pub const MIN_RECEIVE_QUANTITY: i64 = 1;

/// Where stock goes when a request names no location.
pub const DEFAULT_LOCATION: &str = "main";

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(receive, ship, transfer, adjust, list_levels, list_movements))]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inventory", get(list_levels))
        .route("/inventory/receive", post(receive))
        .route("/inventory/ship", post(ship))
        .route("/inventory/transfer", post(transfer))
        .route("/inventory/adjust", post(adjust))
        .route("/movements", get(list_movements))
}

fn refuse_if_any(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn single(mut levels: Vec<StockLevel>) -> ApiResult<StockLevel> {
    levels
        .pop()
        .ok_or_else(|| anyhow::anyhow!("a stock operation answered no level").into())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveRequest {
    pub sku: String,
    /// Location code; `main` when absent.
    pub location: Option<String>,
    /// 1 to 1,000,000,000.
    pub quantity: i64,
    /// Free text, up to 200 characters, kept on the ledger row.
    pub reason: Option<String>,
}

/// Receive stock into a location (staff). Answers the level after.
#[utoipa::path(post, path = "/inventory/receive", tag = "inventory", request_body = ReceiveRequest,
    responses((status = 200, body = StockLevel), (status = 403, body = crate::error::Problem),
              (status = 422, description = "Bad quantity or reason; unknown sku or location; archived product or location",
               body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn receive(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(request): JsonBody<ReceiveRequest>,
) -> ApiResult<Json<StockLevel>> {
    receive_stock(&state, &user, request).await.map(Json)
}

/// Receives stock as `POST /inventory/receive` does (staff): the same
/// checks, messages and transaction for every caller, the web console
/// included. Answers the level after.
pub async fn receive_stock(
    state: &AppState,
    user: &AuthUser,
    request: ReceiveRequest,
) -> ApiResult<StockLevel> {
    user.require(Role::Staff)?;
    let mut errors = Vec::new();
    stock::check_quantity(
        "quantity",
        request.quantity,
        MIN_RECEIVE_QUANTITY,
        &mut errors,
    );
    stock::check_reason(request.reason.as_deref(), &mut errors);
    refuse_if_any(errors)?;
    let location = request.location.as_deref().unwrap_or(DEFAULT_LOCATION);
    let operation = Operation {
        actor: user.id,
        sku: &request.sku,
        locations: &[("location", location)],
        reason: request.reason.as_deref(),
        accepts_archived_product: false,
    };
    let levels = stock::operate(&state.pool, &state.naming, operation, |_, _| {
        Ok(vec![Movement {
            location: 0,
            kind: MovementKind::Receive,
            on_hand_delta: request.quantity,
        }])
    })
    .await?;
    single(levels)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipRequest {
    pub sku: String,
    /// Location code.
    pub location: String,
    /// 1 to 1,000,000,000; at most what is available there.
    pub quantity: i64,
    /// Free text, up to 200 characters, kept on the ledger row.
    pub reason: Option<String>,
}

/// Take stock out of a location for something other than an order, say a
/// return to the supplier (staff). Answers the level after.
#[utoipa::path(post, path = "/inventory/ship", tag = "inventory", request_body = ShipRequest,
    responses((status = 200, body = StockLevel), (status = 403, body = crate::error::Problem),
              (status = 409, description = "More than is available (on hand less reserved) at the location",
               body = crate::error::Problem),
              (status = 422, description = "Bad quantity or reason; unknown sku or location; archived location",
               body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn ship(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(request): JsonBody<ShipRequest>,
) -> ApiResult<Json<StockLevel>> {
    ship_stock(&state, &user, request).await.map(Json)
}

/// Ships stock as `POST /inventory/ship` does (staff), for every caller,
/// the web console included. Answers the level after.
pub async fn ship_stock(
    state: &AppState,
    user: &AuthUser,
    request: ShipRequest,
) -> ApiResult<StockLevel> {
    user.require(Role::Staff)?;
    let mut errors = Vec::new();
    stock::check_quantity("quantity", request.quantity, 1, &mut errors);
    stock::check_reason(request.reason.as_deref(), &mut errors);
    refuse_if_any(errors)?;
    let operation = Operation {
        actor: user.id,
        sku: &request.sku,
        locations: &[("location", &request.location)],
        reason: request.reason.as_deref(),
        accepts_archived_product: true,
    };
    let levels = stock::operate(&state.pool, &state.naming, operation, |product, at| {
        if product.available_at(at[0].id) < request.quantity {
            return Err(stock::not_available(product, &at[0], request.quantity));
        }
        Ok(vec![Movement {
            location: 0,
            kind: MovementKind::Ship,
            on_hand_delta: -request.quantity,
        }])
    })
    .await?;
    single(levels)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub sku: String,
    /// Location code the units leave.
    pub from_location: String,
    /// Location code the units arrive at; not the same as `from_location`.
    pub to_location: String,
    /// 1 to 1,000,000,000; at most what is available at `from_location`.
    pub quantity: i64,
    /// Free text, up to 200 characters, kept on both ledger rows.
    pub reason: Option<String>,
}

/// Both ends of a transfer after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferLevels {
    pub from: StockLevel,
    pub to: StockLevel,
}

/// Move stock between two locations (staff): a `transfer_out` and a
/// `transfer_in` ledger row with one correlation id, in one transaction.
#[utoipa::path(post, path = "/inventory/transfer", tag = "inventory", request_body = TransferRequest,
    responses((status = 200, body = TransferLevels), (status = 403, body = crate::error::Problem),
              (status = 409, description = "More than is available at the source", body = crate::error::Problem),
              (status = 422, description = "Bad quantity; the same location twice; unknown sku or location; archived location",
               body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn transfer(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(request): JsonBody<TransferRequest>,
) -> ApiResult<Json<TransferLevels>> {
    transfer_stock(&state, &user, request).await.map(Json)
}

/// Transfers stock as `POST /inventory/transfer` does (staff), for every
/// caller, the web console included. Answers both ends after.
pub async fn transfer_stock(
    state: &AppState,
    user: &AuthUser,
    request: TransferRequest,
) -> ApiResult<TransferLevels> {
    user.require(Role::Staff)?;
    let mut errors = Vec::new();
    stock::check_quantity("quantity", request.quantity, 1, &mut errors);
    stock::check_reason(request.reason.as_deref(), &mut errors);
    if request.from_location == request.to_location {
        errors.push(FieldError::new(
            "to_location",
            "must differ from from_location",
        ));
    }
    refuse_if_any(errors)?;
    let operation = Operation {
        actor: user.id,
        sku: &request.sku,
        locations: &[
            ("from_location", &request.from_location),
            ("to_location", &request.to_location),
        ],
        reason: request.reason.as_deref(),
        accepts_archived_product: true,
    };
    let levels = stock::operate(&state.pool, &state.naming, operation, |product, at| {
        if product.available_at(at[0].id) < request.quantity {
            return Err(stock::not_available(product, &at[0], request.quantity));
        }
        Ok(vec![
            Movement {
                location: 0,
                kind: MovementKind::TransferOut,
                on_hand_delta: -request.quantity,
            },
            Movement {
                location: 1,
                kind: MovementKind::TransferIn,
                on_hand_delta: request.quantity,
            },
        ])
    })
    .await?;
    let mut levels = levels.into_iter();
    match (levels.next(), levels.next()) {
        (Some(from), Some(to)) => Ok(TransferLevels { from, to }),
        _ => Err(anyhow::anyhow!("a transfer answered fewer than two levels").into()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustRequest {
    pub sku: String,
    /// Location code.
    pub location: String,
    /// What was counted: 0 to 1,000,000,000, at least what is reserved there.
    pub counted_quantity: i64,
    /// One of `cycle_count`, `damage`, `loss`, `found`.
    pub reason: String,
}

/// Set on hand at a location to a counted quantity (staff), writing one
/// `adjust` ledger row of the difference (none when the count agrees).
#[utoipa::path(post, path = "/inventory/adjust", tag = "inventory", request_body = AdjustRequest,
    responses((status = 200, body = StockLevel), (status = 403, body = crate::error::Problem),
              (status = 409, description = "The count is below what is reserved there", body = crate::error::Problem),
              (status = 422, description = "Bad count or reason; unknown sku or location; archived location",
               body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn adjust(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(request): JsonBody<AdjustRequest>,
) -> ApiResult<Json<StockLevel>> {
    adjust_stock(&state, &user, request).await.map(Json)
}

/// Adjusts stock to a count as `POST /inventory/adjust` does (staff), for
/// every caller, the web console included. Answers the level after.
pub async fn adjust_stock(
    state: &AppState,
    user: &AuthUser,
    request: AdjustRequest,
) -> ApiResult<StockLevel> {
    user.require(Role::Staff)?;
    let mut errors = Vec::new();
    stock::check_quantity("counted_quantity", request.counted_quantity, 0, &mut errors);
    if !ADJUST_REASONS.contains(&request.reason.as_str()) {
        errors.push(FieldError::new(
            "reason",
            format!("must be one of {}", ADJUST_REASONS.join(", ")),
        ));
    }
    refuse_if_any(errors)?;
    let operation = Operation {
        actor: user.id,
        sku: &request.sku,
        locations: &[("location", &request.location)],
        reason: Some(&request.reason),
        accepts_archived_product: true,
    };
    let levels = stock::operate(&state.pool, &state.naming, operation, |product, at| {
        let (on_hand, reserved) = product.at(at[0].id);
        if request.counted_quantity < reserved {
            return Err(ApiError::Conflict(format!(
                "{reserved} of {} are reserved at {} for confirmed orders; a count of {} is below that",
                product.sku, at[0].code, request.counted_quantity
            )));
        }
        let delta = request.counted_quantity - on_hand;
        Ok(if delta == 0 {
            Vec::new()
        } else {
            vec![Movement {
                location: 0,
                kind: MovementKind::Adjust,
                on_hand_delta: delta,
            }]
        })
    })
    .await?;
    single(levels)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct LevelQuery {
    /// Only this product.
    pub sku: Option<String>,
    /// Only this location code.
    pub location: Option<String>,
    /// Only levels of products at or below (true) or above (false) their
    /// low-stock threshold, measured over all locations.
    pub low_stock: Option<bool>,
    pub cursor: Option<String>,
    /// 1 to 200; 50 when absent.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LevelPage {
    pub items: Vec<StockLevel>,
    pub next_cursor: Option<String>,
}

/// Stock levels by product and location (staff), ordered by sku then
/// location.
#[utoipa::path(get, path = "/inventory", tag = "inventory", params(LevelQuery),
    responses((status = 200, body = LevelPage), (status = 403, body = crate::error::Problem),
              (status = 422, description = "Bad limit, cursor or filter", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_levels(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(query): QueryParams<LevelQuery>,
) -> ApiResult<Json<LevelPage>> {
    user.require(Role::Staff)?;
    let limit = page_limit(query.limit)?;
    // Skus and location codes are [A-Za-z0-9._-], so '|' cannot occur in either.
    let after = match query
        .cursor
        .as_deref()
        .map(cursor::decode_text)
        .transpose()?
    {
        None => None,
        Some(text) => Some(
            text.split_once('|')
                .map(|(sku, code)| (sku.to_owned(), code.to_owned()))
                .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API returned"))?,
        ),
    };
    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(
        "select p.sku, l.code as location, s.on_hand, s.reserved, s.on_hand - s.reserved as available
         from stock_levels s
         join products p on p.id = s.product_id
         join locations l on l.id = s.location_id
         where true",
    );
    if let Some(sku) = query.sku {
        sql.push(" and p.sku = ").push_bind(sku);
    }
    if let Some(location) = query.location {
        sql.push(" and l.code = ").push_bind(location);
    }
    if let Some(low) = query.low_stock {
        sql.push(
            " and ((select coalesce(sum(t.on_hand - t.reserved), 0) from stock_levels t
                    where t.product_id = p.id) <= p.low_stock_threshold) = ",
        )
        .push_bind(low);
    }
    if let Some((sku, code)) = after {
        sql.push(" and (p.sku, l.code) > (")
            .push_bind(sku)
            .push(", ")
            .push_bind(code)
            .push(")");
    }
    sql.push(" order by p.sku, l.code limit ")
        .push_bind(limit + 1);
    let mut items: Vec<StockLevel> = sql.build_query_as().fetch_all(&state.pool).await?;
    let next_cursor = cursor::next_page(&mut items, limit, |l| {
        cursor::encode_text(&format!("{}|{}", l.sku, l.location))
    });
    Ok(Json(LevelPage { items, next_cursor }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MovementQuery {
    /// Only this product.
    pub sku: Option<String>,
    /// Only this location code.
    pub location: Option<String>,
    /// Only this kind: receive, ship, adjust, transfer_in, transfer_out,
    /// reserve, release or fulfil.
    pub kind: Option<String>,
    /// Only rows written by this user id.
    pub actor: Option<String>,
    /// RFC 3339; rows written at or after it.
    pub from: Option<String>,
    /// RFC 3339; rows written before it.
    pub to: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 200; 50 when absent.
    pub limit: Option<i64>,
}

/// One ledger row.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct MovementView {
    pub id: i64,
    pub sku: String,
    pub location: String,
    pub kind: String,
    pub on_hand_delta: i64,
    pub reserved_delta: i64,
    /// The order the row belongs to, for reserve, release and fulfil.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    /// Who did it, for staff operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Shared by every row one operation wrote, such as both legs of a transfer.
    pub correlation_id: Uuid,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MovementPage {
    pub items: Vec<MovementView>,
    pub next_cursor: Option<String>,
}

fn parse_time(
    field: &str,
    raw: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    let raw = raw?;
    match DateTime::parse_from_rfc3339(raw) {
        Ok(time) => Some(time.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "must be an RFC 3339 time such as 2026-11-21T09:30:00Z",
            ));
            None
        }
    }
}

/// The stock ledger, newest first (staff).
#[utoipa::path(get, path = "/movements", tag = "inventory", params(MovementQuery),
    responses((status = 200, body = MovementPage), (status = 403, body = crate::error::Problem),
              (status = 422, description = "Bad kind, actor, time, limit or cursor", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_movements(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(query): QueryParams<MovementQuery>,
) -> ApiResult<Json<MovementPage>> {
    movements(&state, &user, query).await.map(Json)
}

/// One page of the ledger, newest first, as `GET /movements` answers it
/// (staff).
pub async fn movements(
    state: &AppState,
    user: &AuthUser,
    query: MovementQuery,
) -> ApiResult<MovementPage> {
    user.require(Role::Staff)?;
    let mut errors = Vec::new();
    let limit = page_limit(query.limit)?;
    if let Some(kind) = query.kind.as_deref() {
        if !MOVEMENT_KINDS.contains(&kind) {
            errors.push(FieldError::new(
                "kind",
                format!("must be one of {}", MOVEMENT_KINDS.join(", ")),
            ));
        }
    }
    let actor = match query.actor.as_deref().map(Uuid::parse_str) {
        Some(Err(_)) => {
            errors.push(FieldError::new("actor", "must be a user id (a UUID)"));
            None
        }
        other => other.and_then(Result::ok),
    };
    let from = parse_time("from", query.from.as_deref(), &mut errors);
    let to = parse_time("to", query.to.as_deref(), &mut errors);
    let before = match query
        .cursor
        .as_deref()
        .map(cursor::decode_text)
        .transpose()?
    {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| ApiError::field("cursor", "is not a cursor this API returned"))?,
        ),
    };
    refuse_if_any(errors)?;
    let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(
        "select m.id, p.sku, l.code as location, m.kind, m.on_hand_delta, m.reserved_delta,
                m.order_id, m.actor_id, m.reason, m.correlation_id, m.created_at
         from stock_movements m
         join products p on p.id = m.product_id
         join locations l on l.id = m.location_id
         where true",
    );
    if let Some(sku) = query.sku {
        sql.push(" and p.sku = ").push_bind(sku);
    }
    if let Some(location) = query.location {
        sql.push(" and l.code = ").push_bind(location);
    }
    if let Some(kind) = query.kind {
        sql.push(" and m.kind = ").push_bind(kind);
    }
    if let Some(actor) = actor {
        sql.push(" and m.actor_id = ").push_bind(actor);
    }
    if let Some(from) = from {
        sql.push(" and m.created_at >= ").push_bind(from);
    }
    if let Some(to) = to {
        sql.push(" and m.created_at < ").push_bind(to);
    }
    if let Some(before) = before {
        sql.push(" and m.id < ").push_bind(before);
    }
    sql.push(" order by m.id desc limit ").push_bind(limit + 1);
    let mut items: Vec<MovementView> = sql.build_query_as().fetch_all(&state.pool).await?;
    let next_cursor = cursor::next_page(&mut items, limit, |m| {
        cursor::encode_text(&m.id.to_string())
    });
    Ok(MovementPage { items, next_cursor })
}
