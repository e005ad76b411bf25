//! `POST /inventory/receive`.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use orderflow_core::domain::Role;
use orderflow_core::limits::MAX_STOCK_OPERATION_QUANTITY;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::json_body::JsonBody;
use crate::state::AppState;
use crate::stock;

/// Where stock goes when a request names no location.
pub const DEFAULT_LOCATION: &str = "main";

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(receive))]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new().route("/inventory/receive", post(receive))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveRequest {
    pub sku: String,
    /// Location code; `main` when absent.
    pub location: Option<String>,
    /// 1 to 1,000,000,000.
    pub quantity: i64,
    pub reason: Option<String>,
}

/// A (product, location) stock level.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct StockLevel {
    pub sku: String,
    pub location: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

/// Receive stock into a location (staff). Answers the level after.
#[utoipa::path(post, path = "/inventory/receive", tag = "inventory", request_body = ReceiveRequest,
    responses((status = 200, body = StockLevel), (status = 403, body = crate::error::Problem),
              (status = 422, description = "Bad quantity, unknown sku or location", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn receive(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(request): JsonBody<ReceiveRequest>,
) -> ApiResult<Json<StockLevel>> {
    user.require(Role::Staff)?;
    if !(1..=MAX_STOCK_OPERATION_QUANTITY).contains(&request.quantity) {
        return Err(ApiError::field_limit(
            "quantity",
            format!("must be between 1 and {MAX_STOCK_OPERATION_QUANTITY}"),
            MAX_STOCK_OPERATION_QUANTITY,
        ));
    }
    let location = request.location.as_deref().unwrap_or(DEFAULT_LOCATION);
    let mut tx = state.pool.begin().await?;
    let location_id = stock::active_location(&mut tx, "location", location).await?;
    let product = stock::lock_product(&mut tx, &request.sku, location_id).await?;
    let level: StockLevel = sqlx::query_as(
        "update stock_levels set on_hand = on_hand + $3, updated_at = now()
         where product_id = $1 and location_id = $2
         returning $4::text as sku, $5::text as location, on_hand, reserved, on_hand - reserved as available",
    )
    .bind(product.product_id)
    .bind(location_id)
    .bind(request.quantity)
    .bind(&request.sku)
    .bind(location)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "insert into stock_movements (product_id, location_id, kind, on_hand_delta, reserved_delta,
                                      actor_id, reason, correlation_id)
         values ($1, $2, 'receive', $3, 0, $4, $5, $6)",
    )
    .bind(product.product_id)
    .bind(location_id)
    .bind(request.quantity)
    .bind(user.id)
    .bind(request.reason.as_deref())
    .bind(Uuid::now_v7())
    .execute(&mut *tx)
    .await?;
    stock::record_stock_events(&mut tx, &state.naming, &product).await?;
    tx.commit().await?;
    Ok(Json(level))
}
