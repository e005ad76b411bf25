//! `POST /products`, `GET /products`, `GET /products/{sku}`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_core::domain::{Role, Sku};
use orderflow_core::limits::{MAX_NAME_LEN, MAX_STOCK_OPERATION_QUANTITY};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::cursor;
use crate::http::orders::page_limit;
use crate::json_body::JsonBody;
use crate::state::AppState;

/// Longest unit or category label.
pub const MAX_LABEL_LEN: usize = 64;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create_product, list_products, get_product))]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products", post(create_product).get(list_products))
        .route("/products/{sku}", get(get_product))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub unit: Option<String>,
    pub category: Option<String>,
    pub low_stock_threshold: i64,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ProductView {
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub unit: String,
    pub category: Option<String>,
    pub low_stock_threshold: i64,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    /// Units on hand over all locations.
    pub on_hand: i64,
    /// Units reserved for confirmed orders.
    pub reserved: i64,
    /// on_hand less reserved.
    pub available: i64,
    /// Whether available is at or below the low-stock threshold.
    pub low_stock: bool,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct LocationStock {
    pub location: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductDetail {
    #[serde(flatten)]
    pub product: ProductView,
    /// Stock per location.
    pub locations: Vec<LocationStock>,
}

fn check_label(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) {
    let length = value.chars().count();
    if value.trim().is_empty() || length > max {
        errors.push(
            FieldError::new(field, format!("must be 1 to {max} characters")).with_limit(max as i64),
        );
    }
}

/// Add a product to the catalogue (manager).
#[utoipa::path(post, path = "/products", tag = "products", request_body = NewProduct,
    responses((status = 201, body = ProductView), (status = 403, body = crate::error::Problem),
              (status = 409, description = "sku taken", body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_product(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(new): JsonBody<NewProduct>,
) -> ApiResult<(StatusCode, Json<ProductView>)> {
    user.require(Role::Manager)?;
    let mut errors = Vec::new();
    if let Err(e) = Sku::parse(&new.sku) {
        errors.push(FieldError::new("sku", e.message));
    }
    check_label("name", &new.name, MAX_NAME_LEN, &mut errors);
    if let Some(unit) = &new.unit {
        check_label("unit", unit, MAX_LABEL_LEN, &mut errors);
    }
    if let Some(category) = &new.category {
        check_label("category", category, MAX_LABEL_LEN, &mut errors);
    }
    if new.price_cents < 0 {
        errors.push(FieldError::new("price_cents", "must not be negative").with_limit(0));
    }
    if !(0..=MAX_STOCK_OPERATION_QUANTITY).contains(&new.low_stock_threshold) {
        errors.push(
            FieldError::new(
                "low_stock_threshold",
                format!("must be between 0 and {MAX_STOCK_OPERATION_QUANTITY}"),
            )
            .with_limit(MAX_STOCK_OPERATION_QUANTITY),
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let product: ProductView = sqlx::query_as(
        "insert into products (sku, name, price_cents, unit, category, low_stock_threshold)
         values ($1, $2, $3, coalesce($4, 'each'), $5, $6)
         returning sku, name, price_cents, unit, category, low_stock_threshold, false as archived, created_at,
                   0::int8 as on_hand, 0::int8 as reserved, 0::int8 as available,
                   (0 <= low_stock_threshold) as low_stock",
    )
    .bind(&new.sku)
    .bind(new.name.trim())
    .bind(new.price_cents)
    .bind(new.unit.as_deref().map(str::trim))
    .bind(new.category.as_deref().map(str::trim))
    .bind(new.low_stock_threshold)
    .fetch_one(&state.pool)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.constraint() == Some("products_sku_key") => {
            ApiError::Conflict(format!("a product with sku {} already exists", new.sku))
        }
        _ => err.into(),
    })?;
    Ok((StatusCode::CREATED, Json(product)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ProductQuery {
    /// A fragment of the name or sku, case-insensitive.
    pub search: Option<String>,
    pub category: Option<String>,
    /// Only products at or below (true) or above (false) their threshold.
    pub low_stock: Option<bool>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    pub items: Vec<ProductView>,
    pub next_cursor: Option<String>,
}

const PRODUCT_COLUMNS: &str =
    "p.sku, p.name, p.price_cents, p.unit, p.category, p.low_stock_threshold,
    p.archived_at is not null as archived, p.created_at,
    coalesce(t.on_hand, 0)::int8 as on_hand, coalesce(t.reserved, 0)::int8 as reserved,
    coalesce(t.on_hand - t.reserved, 0)::int8 as available,
    coalesce(t.on_hand - t.reserved, 0) <= p.low_stock_threshold as low_stock";

const PRODUCT_TOTALS: &str = "left join lateral (
        select sum(on_hand) as on_hand, sum(reserved) as reserved
        from stock_levels s where s.product_id = p.id) t on true";

/// Search the catalogue (any user), ordered by sku.
#[utoipa::path(get, path = "/products", tag = "products", params(ProductQuery),
    responses((status = 200, body = ProductPage), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_products(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(query): Query<ProductQuery>,
) -> ApiResult<Json<ProductPage>> {
    let limit = page_limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(cursor::decode_text)
        .transpose()?;
    let pattern = query.search.as_deref().map(|s| {
        let escaped = s
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let sql = format!(
        "select {PRODUCT_COLUMNS} from products p {PRODUCT_TOTALS}
         where ($1::text is null or p.sku > $1)
           and ($2::text is null or p.name ilike $2 or p.sku ilike $2)
           and ($3::text is null or p.category = $3)
           and ($4::bool is null or (coalesce(t.on_hand - t.reserved, 0) <= p.low_stock_threshold) = $4)
         order by p.sku limit $5"
    );
    let mut items: Vec<ProductView> = sqlx::query_as(&sql)
        .bind(after)
        .bind(pattern)
        .bind(query.category)
        .bind(query.low_stock)
        .bind(limit + 1)
        .fetch_all(&state.pool)
        .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|p| cursor::encode_text(&p.sku))
    } else {
        None
    };
    Ok(Json(ProductPage { items, next_cursor }))
}

/// One product with its stock summed over locations and per location.
#[utoipa::path(get, path = "/products/{sku}", tag = "products", params(("sku" = String, Path)),
    responses((status = 200, body = ProductDetail), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_product(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(sku): Path<String>,
) -> ApiResult<Json<ProductDetail>> {
    let sql = format!("select {PRODUCT_COLUMNS} from products p {PRODUCT_TOTALS} where p.sku = $1");
    let product: ProductView = sqlx::query_as(&sql)
        .bind(&sku)
        .fetch_optional(&state.pool)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    let locations: Vec<LocationStock> = sqlx::query_as(
        "select l.code as location, s.on_hand, s.reserved, s.on_hand - s.reserved as available
         from stock_levels s join products p on p.id = s.product_id join locations l on l.id = s.location_id
         where p.sku = $1 order by l.code",
    )
    .bind(&sku)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(ProductDetail { product, locations }))
}
