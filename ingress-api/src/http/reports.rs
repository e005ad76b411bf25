//! Reports over stock and orders: `GET /alerts`, `GET /dashboard`, and
//! `GET /admin/reconciliation`, the proof that stock equals the ledger.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_core::domain::Role;
use orderflow_core::reconciliation::{self, Report};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::http::cursor;
use crate::http::orders::page_limit;
use crate::query_params::QueryParams;
use crate::state::AppState;

/// How far back the dashboard looks for its top movers.
pub const TOP_MOVERS_WINDOW_HOURS: i64 = 24;
/// How many top movers the dashboard lists.
pub const TOP_MOVERS: i64 = 10;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_alerts, dashboard, reconcile))]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list_alerts))
        .route("/dashboard", get(dashboard))
        .route("/admin/reconciliation", get(reconcile))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AlertQuery {
    /// `active` or `resolved`.
    pub state: Option<String>,
    pub sku: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// A low-stock alert: opened when a product's available units fell to or
/// below its threshold, resolved when they rose back above it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Alert {
    pub id: i64,
    pub sku: String,
    /// `active` or `resolved`.
    pub state: String,
    /// Available units when the alert was raised.
    pub available: i64,
    pub threshold: i64,
    pub raised_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPage {
    pub items: Vec<Alert>,
    pub next_cursor: Option<String>,
}

/// Low-stock alerts, newest first (staff).
#[utoipa::path(get, path = "/alerts", tag = "reports", params(AlertQuery),
    responses((status = 200, body = AlertPage), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(query): QueryParams<AlertQuery>,
) -> ApiResult<Json<AlertPage>> {
    alerts_page(&state, &user, query).await.map(Json)
}

/// One page of low-stock alerts, newest first, as `GET /alerts` answers it
/// (staff).
pub async fn alerts_page(
    state: &AppState,
    user: &AuthUser,
    query: AlertQuery,
) -> ApiResult<AlertPage> {
    user.require(Role::Staff)?;
    if let Some(alert_state) = query.state.as_deref() {
        if !matches!(alert_state, "active" | "resolved") {
            return Err(ApiError::field("state", "must be active or resolved"));
        }
    }
    let limit = page_limit(query.limit)?;
    let before: Option<i64> = query
        .cursor
        .as_deref()
        .map(|c| {
            cursor::decode_text(c)?
                .parse()
                .map_err(|_| ApiError::field("cursor", "is not a cursor this API returned"))
        })
        .transpose()?;
    let mut items: Vec<Alert> = sqlx::query_as(
        "select id, sku, state, available, threshold, raised_at, resolved_at from stock_alerts
         where ($1::text is null or state = $1) and ($2::text is null or sku = $2)
           and ($3::int8 is null or id < $3)
         order by id desc limit $4",
    )
    .bind(query.state)
    .bind(query.sku)
    .bind(before)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let next_cursor = cursor::next_page(&mut items, limit, |a| {
        cursor::encode_text(&a.id.to_string())
    });
    Ok(AlertPage { items, next_cursor })
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct StockTotals {
    /// Products not archived.
    pub products: i64,
    /// Locations not archived.
    pub locations: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    /// Products at or below their low-stock threshold.
    pub low_stock: i64,
    /// Low-stock alerts currently active.
    pub active_alerts: i64,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct StatusCount {
    pub status: String,
    pub orders: i64,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Mover {
    pub sku: String,
    /// Units reserved by orders, shipped or fulfilled in the window.
    pub units_out: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    pub stock: StockTotals,
    /// Orders accepted since midnight (UTC), by status.
    pub orders_today: Vec<StatusCount>,
    /// The products that moved most units out in the last 24 hours.
    pub top_movers: Vec<Mover>,
}

/// Totals, low-stock count, today's orders by status, top movers (staff).
#[utoipa::path(get, path = "/dashboard", tag = "reports",
    responses((status = 200, body = Dashboard), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn dashboard(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<Json<Dashboard>> {
    dashboard_figures(&state, &user).await.map(Json)
}

/// Orders decided in one minute (UTC).
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct MinuteCount {
    /// `HH:MM`, the minute's start.
    pub minute: String,
    pub decided: i64,
}

/// How many minutes [`decided_per_minute`] goes back, the current one
/// included.
pub const DECIDED_MINUTES: i32 = 10;

/// Orders decided in each of the last [`DECIDED_MINUTES`] minutes, oldest
/// first, the current (partial) minute last; minutes with none count 0.
/// Staff and up, as the dashboard. The search goes through the status and
/// creation-time index, so it counts orders placed in the last day: one
/// queued longer than that before its decision is left out.
pub async fn decided_per_minute(state: &AppState, user: &AuthUser) -> ApiResult<Vec<MinuteCount>> {
    user.require(Role::Staff)?;
    let minutes = sqlx::query_as(
        "with decided as (
             select date_trunc('minute', decided_at) as minute, count(*) as decided
             from orders
             where status in ('confirmed', 'rejected', 'cancelled', 'fulfilled')
               and created_at >= now() - interval '1 day'
               and decided_at >= date_trunc('minute', now()) - make_interval(mins => $1 - 1)
             group by 1)
         select to_char(m at time zone 'utc', 'HH24:MI') as minute,
                coalesce(d.decided, 0)::int8 as decided
         from generate_series(date_trunc('minute', now()) - make_interval(mins => $1 - 1),
                              date_trunc('minute', now()), interval '1 minute') as m
         left join decided d on d.minute = m
         order by m",
    )
    .bind(DECIDED_MINUTES)
    .fetch_all(&state.pool)
    .await?;
    Ok(minutes)
}

/// The figures `GET /dashboard` answers (staff).
pub async fn dashboard_figures(state: &AppState, user: &AuthUser) -> ApiResult<Dashboard> {
    user.require(Role::Staff)?;
    let stock: StockTotals = sqlx::query_as(
        "with per_product as (
            select p.id, p.low_stock_threshold,
                   coalesce(sum(s.on_hand), 0) as on_hand, coalesce(sum(s.reserved), 0) as reserved
            from products p left join stock_levels s on s.product_id = p.id
            where p.archived_at is null group by p.id)
         select (select count(*) from per_product) as products,
                (select count(*) from locations where archived_at is null) as locations,
                coalesce(sum(on_hand), 0)::int8 as on_hand,
                coalesce(sum(reserved), 0)::int8 as reserved,
                coalesce(sum(on_hand - reserved), 0)::int8 as available,
                count(*) filter (where on_hand - reserved <= low_stock_threshold) as low_stock,
                (select count(*) from stock_alerts where state = 'active') as active_alerts
         from per_product",
    )
    .fetch_one(&state.pool)
    .await?;
    let orders_today: Vec<StatusCount> = sqlx::query_as(
        "select status, count(*) as orders from orders
         where created_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc'
         group by status order by status",
    )
    .fetch_all(&state.pool)
    .await?;
    let top_movers: Vec<Mover> = sqlx::query_as(
        "select p.sku, sum(case when m.kind = 'reserve' then m.reserved_delta
                                 when m.kind = 'ship' then -m.on_hand_delta
                                 else 0 end)::int8 as units_out
         from stock_movements m join products p on p.id = m.product_id
         where m.kind in ('reserve', 'ship')
           and m.created_at >= now() - make_interval(hours => $1::int4)
         group by p.sku order by units_out desc, p.sku limit $2",
    )
    .bind(TOP_MOVERS_WINDOW_HOURS as i32)
    .bind(TOP_MOVERS)
    .fetch_all(&state.pool)
    .await?;
    Ok(Dashboard {
        stock,
        orders_today,
        top_movers,
    })
}

/// Proves every stock level equals its ledger sums and lists any drift (admin).
#[utoipa::path(get, path = "/admin/reconciliation", tag = "reports",
    responses((status = 200, body = Report), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn reconcile(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<Report>> {
    user.require(Role::Admin)?;
    Ok(Json(reconciliation::reconcile(&state.pool).await?))
}
