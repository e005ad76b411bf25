//! The catalogue: `POST /products`, `GET /products`, `GET /products/{sku}`,
//! `PATCH /products/{sku}` and `POST /products/{sku}/archive`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_core::domain::{Role, Sku};
use orderflow_core::limits::{MAX_NAME_LEN, MAX_STOCK_OPERATION_QUANTITY};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::cursor;
use crate::http::orders::page_limit;
use crate::json_body::JsonBody;
use crate::path_params::PathParams;
use crate::query_params::QueryParams;
use crate::state::AppState;
use crate::stock;

/// Longest unit or category label.
pub const MAX_LABEL_LEN: usize = 64;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_product,
    list_products,
    get_product,
    update_product,
    archive_product
))]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products", post(create_product).get(list_products))
        .route("/products/{sku}", get(get_product).patch(update_product))
        .route("/products/{sku}/archive", post(archive_product))
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

/// The body of `PATCH /products/{sku}`: the fields to change, at least one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductChange {
    /// 1 to 200 characters.
    pub name: Option<String>,
    /// Not negative.
    pub price_cents: Option<i64>,
    /// 1 to 64 characters.
    pub unit: Option<String>,
    /// 1 to 64 characters; `null` clears the category.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub category: Option<Option<String>>,
    /// 0 to 1,000,000,000. A change that moves the product across its line
    /// publishes `stock.low` or `stock.recovered`.
    pub low_stock_threshold: Option<i64>,
}

impl ProductChange {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.price_cents.is_none()
            && self.unit.is_none()
            && self.category.is_none()
            && self.low_stock_threshold.is_none()
    }
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
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

/// Checks the fields a product is created or changed with; absent fields
/// pass.
fn check_fields(fields: &ProductChange, errors: &mut Vec<FieldError>) {
    if let Some(name) = &fields.name {
        check_label("name", name, MAX_NAME_LEN, errors);
    }
    if let Some(unit) = &fields.unit {
        check_label("unit", unit, MAX_LABEL_LEN, errors);
    }
    if let Some(Some(category)) = &fields.category {
        check_label("category", category, MAX_LABEL_LEN, errors);
    }
    if fields.price_cents.is_some_and(|price| price < 0) {
        errors.push(FieldError::new("price_cents", "must not be negative").with_limit(0));
    }
    if fields
        .low_stock_threshold
        .is_some_and(|t| !(0..=MAX_STOCK_OPERATION_QUANTITY).contains(&t))
    {
        errors.push(
            FieldError::new(
                "low_stock_threshold",
                format!("must be between 0 and {MAX_STOCK_OPERATION_QUANTITY}"),
            )
            .with_limit(MAX_STOCK_OPERATION_QUANTITY),
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
    add_product(&state, &user, new)
        .await
        .map(|product| (StatusCode::CREATED, Json(product)))
}

/// Adds a product as `POST /products` does (manager), for every caller,
/// the web console included.
pub async fn add_product(
    state: &AppState,
    user: &AuthUser,
    new: NewProduct,
) -> ApiResult<ProductView> {
    user.require(Role::Manager)?;
    let mut errors = Vec::new();
    if let Err(e) = Sku::parse(&new.sku) {
        errors.push(FieldError::new("sku", e.message));
    }
    check_fields(
        &ProductChange {
            name: Some(new.name.clone()),
            price_cents: Some(new.price_cents),
            unit: new.unit.clone(),
            category: Some(new.category.clone()),
            low_stock_threshold: Some(new.low_stock_threshold),
        },
        &mut errors,
    );
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
    Ok(product)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ProductQuery {
    /// A fragment of the name or sku, case-insensitive.
    pub search: Option<String>,
    pub category: Option<String>,
    /// Only products at or below (true) or above (false) their threshold.
    pub low_stock: Option<bool>,
    /// Archived products too; false when absent.
    pub include_archived: Option<bool>,
    pub cursor: Option<String>,
    /// 1 to 200; 50 when absent.
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

/// One page of a catalogue search: the filters of `GET /products`, turned
/// into the one query the endpoint runs.
#[derive(Debug, Clone, Default)]
pub struct ProductSearch {
    /// A fragment of the name or sku, matched case-insensitively anywhere.
    pub search: Option<String>,
    pub category: Option<String>,
    pub low_stock: Option<bool>,
    pub include_archived: bool,
    /// The sku the previous page ended with.
    pub after: Option<String>,
    /// Rows to read: the page size plus one, to know whether more follow.
    pub limit: i64,
}

impl ProductSearch {
    /// Appends the search's query to `builder`, which may start empty or
    /// with `explain`: tests show the plan of exactly the endpoint's query.
    ///
    /// Only the filters given become predicates. A catch-all such as
    /// `($2 is null or p.name ilike $2)` would leave the planner a generic
    /// plan that cannot use the trigram indexes on name and sku; spelled out,
    /// `p.name ilike $n or lower(p.sku) like lower($n)` becomes a BitmapOr of
    /// the two.
    pub fn push_query<'a>(&'a self, builder: &mut QueryBuilder<'a, Postgres>) {
        builder.push(format!(
            "select {PRODUCT_COLUMNS} from products p {PRODUCT_TOTALS} where true"
        ));
        if !self.include_archived {
            builder.push(" and p.archived_at is null");
        }
        if let Some(search) = &self.search {
            let escaped = search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            // lower(sku) like lower(..), not sku ilike: the sku's trigram
            // index is on lower(sku), so that equality on sku (the order
            // processor's lookups) can only use the btree (migration 8).
            builder
                .push(" and (p.name ilike ")
                .push_bind(pattern.clone())
                .push(" or lower(p.sku) like lower(")
                .push_bind(pattern)
                .push("))");
        }
        if let Some(category) = &self.category {
            builder.push(" and p.category = ").push_bind(category);
        }
        if let Some(low) = self.low_stock {
            builder
                .push(" and (coalesce(t.on_hand - t.reserved, 0) <= p.low_stock_threshold) = ")
                .push_bind(low);
        }
        if let Some(after) = &self.after {
            builder.push(" and p.sku > ").push_bind(after);
        }
        builder.push(" order by p.sku limit ").push_bind(self.limit);
    }
}

/// Search the catalogue (any user), ordered by sku. Archived products are
/// left out unless `include_archived=true`.
#[utoipa::path(get, path = "/products", tag = "products", params(ProductQuery),
    responses((status = 200, body = ProductPage), (status = 401, body = crate::error::Problem),
              (status = 422, description = "Bad limit, cursor or filter", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_products(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(query): QueryParams<ProductQuery>,
) -> ApiResult<Json<ProductPage>> {
    search_products(&state, &user, query).await.map(Json)
}

/// One page of the catalogue as `GET /products` answers it; any signed-in
/// user may search.
pub async fn search_products(
    state: &AppState,
    _user: &AuthUser,
    query: ProductQuery,
) -> ApiResult<ProductPage> {
    let limit = page_limit(query.limit)?;
    let search = ProductSearch {
        search: query.search,
        category: query.category,
        low_stock: query.low_stock,
        include_archived: query.include_archived.unwrap_or(false),
        after: query
            .cursor
            .as_deref()
            .map(cursor::decode_text)
            .transpose()?,
        limit: limit + 1,
    };
    let mut sql = QueryBuilder::new("");
    search.push_query(&mut sql);
    let mut items: Vec<ProductView> = sql.build_query_as().fetch_all(&state.pool).await?;
    let next_cursor = cursor::next_page(&mut items, limit, |p| cursor::encode_text(&p.sku));
    Ok(ProductPage { items, next_cursor })
}

/// The categories of the products in the catalogue (not archived), sorted,
/// for pickers that filter the catalogue by category.
pub async fn categories(state: &AppState, _user: &AuthUser) -> ApiResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select distinct category from products
         where category is not null and archived_at is null order by category",
    )
    .fetch_all(&state.pool)
    .await?)
}

/// One product as every product endpoint answers it.
async fn product_view(executor: impl PgExecutor<'_>, sku: &str) -> ApiResult<Option<ProductView>> {
    let sql = format!("select {PRODUCT_COLUMNS} from products p {PRODUCT_TOTALS} where p.sku = $1");
    Ok(sqlx::query_as(&sql)
        .bind(sku)
        .fetch_optional(executor)
        .await?)
}

/// One product with its stock summed over locations and per location.
#[utoipa::path(get, path = "/products/{sku}", tag = "products", params(("sku" = String, Path)),
    responses((status = 200, body = ProductDetail), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_product(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(sku): PathParams<String>,
) -> ApiResult<Json<ProductDetail>> {
    product_detail(&state, &user, &sku).await.map(Json)
}

/// One product with its stock per location, as `GET /products/{sku}`
/// answers it; any signed-in user may look.
pub async fn product_detail(
    state: &AppState,
    _user: &AuthUser,
    sku: &str,
) -> ApiResult<ProductDetail> {
    let product = product_view(&state.pool, sku)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    let locations: Vec<LocationStock> = sqlx::query_as(
        "select l.code as location, s.on_hand, s.reserved, s.on_hand - s.reserved as available
         from stock_levels s join products p on p.id = s.product_id join locations l on l.id = s.location_id
         where p.sku = $1 order by l.code",
    )
    .bind(sku)
    .fetch_all(&state.pool)
    .await?;
    Ok(ProductDetail { product, locations })
}

/// Change a product's name, price, unit, category or low-stock threshold
/// (manager). Archived products are kept as they were.
#[utoipa::path(patch, path = "/products/{sku}", tag = "products", params(("sku" = String, Path)),
    request_body = ProductChange,
    responses((status = 200, body = ProductView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "The product is archived", body = crate::error::Problem),
              (status = 422, description = "No field to change, or a bad one", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn update_product(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(sku): PathParams<String>,
    JsonBody(change): JsonBody<ProductChange>,
) -> ApiResult<Json<ProductView>> {
    change_product(&state, &user, &sku, change).await.map(Json)
}

/// Changes a product as `PATCH /products/{sku}` does (manager), for every
/// caller, the web console included.
pub async fn change_product(
    state: &AppState,
    user: &AuthUser,
    sku: &str,
    change: ProductChange,
) -> ApiResult<ProductView> {
    user.require(Role::Manager)?;
    if change.is_empty() {
        return Err(ApiError::field(
            "body",
            "must change at least one of name, price_cents, unit, category, low_stock_threshold",
        ));
    }
    let mut errors = Vec::new();
    check_fields(&change, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut tx = state.pool.begin().await?;
    // The product row first, then its stock rows: the order stock operations
    // take them in.
    let (product_id, threshold, archived): (i64, i64, bool) = sqlx::query_as(
        "select id, low_stock_threshold, archived_at is not null from products where sku = $1
         for no key update",
    )
    .bind(sku)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("product"))?;
    if archived {
        return Err(ApiError::Conflict(format!(
            "product {sku} is archived; archived products are kept as they were"
        )));
    }
    if let Some(new_threshold) = change.low_stock_threshold.filter(|t| *t != threshold) {
        // Held until commit, so no order or stock operation changes what is
        // available between measuring the crossing and the new threshold
        // taking effect.
        let levels = stock::lock_levels(&mut tx, product_id).await?;
        let available = levels.iter().map(|l| l.on_hand - l.reserved).sum();
        stock::record_threshold_change(
            &mut tx,
            &state.naming,
            sku,
            available,
            threshold,
            new_threshold,
        )
        .await?;
    }
    sqlx::query(
        "update products set name = coalesce($2, name), price_cents = coalesce($3, price_cents),
                unit = coalesce($4, unit), category = case when $5 then $6 else category end,
                low_stock_threshold = coalesce($7, low_stock_threshold), updated_at = now()
         where id = $1",
    )
    .bind(product_id)
    .bind(change.name.as_deref().map(str::trim))
    .bind(change.price_cents)
    .bind(change.unit.as_deref().map(str::trim))
    .bind(change.category.is_some())
    .bind(
        change
            .category
            .as_ref()
            .and_then(|c| c.as_deref().map(str::trim)),
    )
    .bind(change.low_stock_threshold)
    .execute(&mut *tx)
    .await?;
    let product = product_view(&mut *tx, sku)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    tx.commit().await?;
    Ok(product)
}

/// Archive a product (manager): it leaves the catalogue listing, orders for
/// it are rejected with `product_archived`, it takes no new stock; its
/// history, reservations and remaining stock stay. Archiving twice is fine.
#[utoipa::path(post, path = "/products/{sku}/archive", tag = "products", params(("sku" = String, Path)),
    responses((status = 200, body = ProductView), (status = 403, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn archive_product(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(sku): PathParams<String>,
) -> ApiResult<Json<ProductView>> {
    archive(&state, &user, &sku).await.map(Json)
}

/// Archives a product as `POST /products/{sku}/archive` does (manager),
/// for every caller, the web console included.
pub async fn archive(state: &AppState, user: &AuthUser, sku: &str) -> ApiResult<ProductView> {
    user.require(Role::Manager)?;
    let mut tx = state.pool.begin().await?;
    sqlx::query_scalar::<_, i64>(
        "update products set archived_at = coalesce(archived_at, now()),
                updated_at = case when archived_at is null then now() else updated_at end
         where sku = $1 returning id",
    )
    .bind(sku)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound("product"))?;
    let product = product_view(&mut *tx, sku)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    tx.commit().await?;
    Ok(product)
}
