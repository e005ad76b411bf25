//! `POST /orders`, `GET /orders/{id}`, `GET /orders`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::Utc;
use orderflow_core::command::{OrderAction, OrderCommand, PlaceOrder};
use orderflow_core::domain::{request_hash, OrderLine, OrderStatus, Quantity, Role, Sku};
use orderflow_core::limits::{
    DEFAULT_PAGE_LIMIT, MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY_LEN, MAX_LINE_QUANTITY,
    MAX_ORDER_LINES, MAX_PAGE_LIMIT, MAX_SKU_LEN, MIN_ORDER_LINES,
};
use orderflow_core::metric_names;
use orderflow_core::partition::partition_for;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{database_unreachable, ApiError, ApiResult, FieldError};
use crate::http::cursor;
use crate::http::request_trace::{LoggedOrderId, RequestTrace};
use crate::json_body::{self, JsonBytes};
use crate::order_records::{self, ListQuery, OrderView};
use crate::path_params::PathParams;
use crate::query_params::QueryParams;
use crate::queue::QueueError;
use crate::state::AppState;

/// Order ids derived from an `Idempotency-Key` live in this UUIDv5 namespace.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7266_6c6f_772d_6964_656d_706f);

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(place_order, get_order, list_orders, cancel_order, fulfil_order))]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", post(place_order).get(list_orders))
        .route("/orders/{order_id}", get(get_order))
        .route("/orders/{order_id}/cancel", post(cancel_order))
        .route("/orders/{order_id}/fulfil", post(fulfil_order))
}

/// The body of `POST /orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// 1 to 100 lines.
    pub items: Vec<OrderLineRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineRequest {
    /// `[A-Za-z0-9._-]{1,64}`
    pub sku: String,
    /// 1 to 10,000.
    pub quantity: i64,
}

/// The answer to an accepted order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderAccepted {
    pub order_id: Uuid,
    pub status: OrderStatus,
}

/// Decodes and checks the body of `POST /orders`: everything the API does
/// with the bytes before it queues the order, as a pure function so the
/// property tests and the fuzz target drive exactly this path.
pub fn decode_order_request(body: &[u8]) -> ApiResult<Vec<OrderLine>> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    parse_lines(json_body::decode(body)?)
}

/// Turns the request into order lines, reporting every refused field at once.
pub fn parse_lines(request: PlaceOrderRequest) -> Result<Vec<OrderLine>, ApiError> {
    let count = request.items.len();
    if count < MIN_ORDER_LINES {
        return Err(ApiError::field_limit(
            "items",
            format!("must have at least {MIN_ORDER_LINES} line"),
            MIN_ORDER_LINES as i64,
        ));
    }
    if count > MAX_ORDER_LINES {
        return Err(ApiError::field_limit(
            "items",
            format!("must have at most {MAX_ORDER_LINES} lines (MAX_ORDER_LINES)"),
            MAX_ORDER_LINES as i64,
        ));
    }
    let mut errors = Vec::new();
    let mut lines = Vec::with_capacity(count);
    for (index, line) in request.items.into_iter().enumerate() {
        let sku = Sku::parse(&line.sku).map_err(|e| {
            errors.push(
                FieldError::new(format!("items[{index}].sku"), e.message)
                    .with_limit(MAX_SKU_LEN as i64),
            )
        });
        let quantity = Quantity::try_from(line.quantity).map_err(|e| {
            let limit = if line.quantity < 1 {
                1
            } else {
                MAX_LINE_QUANTITY
            };
            errors.push(
                FieldError::new(format!("items[{index}].quantity"), e.message).with_limit(limit),
            )
        });
        if let (Ok(sku), Ok(quantity)) = (sku, quantity) {
            lines.push(OrderLine { sku, quantity });
        }
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty()
                && k.len() <= MAX_IDEMPOTENCY_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::field_limit(
                "Idempotency-Key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
                MAX_IDEMPOTENCY_KEY_LEN as i64,
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// Place an order. Answered 202 only once JetStream has stored it.
#[utoipa::path(
    post, path = "/orders", tag = "orders",
    request_body = PlaceOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body return the same order")),
    responses(
        (status = 202, description = "Queued", body = OrderAccepted, headers(("Location" = String))),
        (status = 400, description = "Malformed JSON", body = crate::error::Problem),
        (status = 401, description = "No valid token", body = crate::error::Problem),
        (status = 413, description = "Body over 64 KiB", body = crate::error::Problem),
        (status = 422, description = "Invalid order, or the key was used with another body", body = crate::error::Problem),
        (status = 503, description = "The queue cannot take orders now; see Retry-After", body = crate::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn place_order(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    trace: Option<Extension<RequestTrace>>,
    JsonBytes(body): JsonBytes,
) -> ApiResult<Response> {
    let items = decode_order_request(&body)?;
    let key = idempotency_key(&headers)?;
    let hash = request_hash(&items);
    let order_id = match &key {
        Some(key) => Uuid::new_v5(
            &IDEMPOTENCY_NAMESPACE,
            format!("{}:{key}", user.id).as_bytes(),
        ),
        None => Uuid::now_v7(),
    };

    if key.is_some() {
        // A key seen long ago (beyond the stream's duplicate window) is
        // answered from the database when it is up.
        if let Ok(Some((stored_hash, status))) =
            order_records::request_hash(&state.pool, order_id).await
        {
            ensure_same_body(&stored_hash, &hash)?;
            let status = OrderStatus::parse(&status).unwrap_or(OrderStatus::Pending);
            return Ok(accepted(order_id, status));
        }
    }

    let partition = partition_for(&items[0].sku, state.partitions);
    let order = PlaceOrder {
        order_id,
        customer_id: user.id,
        items,
        idempotency_key: key.clone(),
        request_hash: hex::encode(&hash),
        accepted_at: Utc::now(),
    };
    let queued = state
        .queue
        .publish(partition, &order, &request_trace(trace).0)
        .await
        .map_err(|err| {
            metrics::counter!(metric_names::ORDERS_UNAVAILABLE).increment(1);
            tracing::warn!(
                reason = err.reason(),
                "refusing an order: the queue cannot take it"
            );
            let detail = match err {
                QueueError::Unavailable(_) => {
                    "the order queue cannot take orders right now; nothing was accepted"
                }
                // Saying "nothing was accepted" here would be a lie when the
                // broker stored the order before the connection dropped.
                QueueError::Unconfirmed(_) => {
                    "the order queue did not confirm the order in time; it may still be \
                     accepted: retry with the same Idempotency-Key to learn its fate"
                }
            };
            ApiError::Unavailable {
                detail: detail.into(),
                retry_after_seconds: 1,
            }
        })?;
    if queued.duplicate {
        if key.is_some() {
            check_duplicate_body(&state, queued.sequence, order_id, &hash).await?;
        }
        return Ok(accepted(order_id, OrderStatus::Pending));
    }
    state.pending.record(order, partition);
    metrics::counter!(metric_names::ORDERS_ACCEPTED).increment(1);
    Ok(accepted(order_id, OrderStatus::Pending))
}

/// A refusal by the queue, answered 503 with `Retry-After`: nothing was
/// accepted, and the client may retry.
fn queue_unavailable(err: QueueError) -> ApiError {
    let reason = err.reason();
    metrics::counter!(metric_names::ORDERS_UNAVAILABLE).increment(1);
    tracing::warn!(%reason, "refusing a command: the queue cannot take it");
    let detail = match err {
        QueueError::Unavailable(_) => {
            "the order queue cannot take commands right now; nothing was accepted"
        }
        QueueError::Unconfirmed(_) => {
            "the order queue did not confirm the command in time; it may still be applied: \
             repeating it is safe"
        }
    };
    ApiError::Unavailable {
        detail: detail.into(),
        retry_after_seconds: 1,
    }
}

/// The same key with another body is refused: the key names one order.
async fn check_duplicate_body(
    state: &AppState,
    sequence: u64,
    order_id: Uuid,
    hash: &[u8],
) -> ApiResult<()> {
    if sequence > 0 {
        if let Some(original) = state.queue.get(sequence).await {
            if original.order_id == order_id {
                let stored = hex::decode(&original.request_hash).unwrap_or_default();
                return ensure_same_body(&stored, hash);
            }
        }
    }
    // No longer queued, so it was decided and the database has it.
    match order_records::request_hash(&state.pool, order_id).await {
        Ok(Some((stored, _))) => ensure_same_body(&stored, hash),
        Ok(None) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

fn ensure_same_body(stored: &[u8], hash: &[u8]) -> ApiResult<()> {
    if stored == hash {
        Ok(())
    } else {
        Err(ApiError::UnprocessableIdempotencyKey(
            "this Idempotency-Key was already used with another body".into(),
        ))
    }
}

fn accepted(order_id: Uuid, status: OrderStatus) -> Response {
    let location = HeaderValue::from_str(&format!("/orders/{order_id}")).expect("a valid header");
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(OrderAccepted { order_id, status }),
    )
        .into_response();
    // The request's log line names the order, so a grep by order id finds it.
    response.extensions_mut().insert(LoggedOrderId(order_id));
    response
}

/// The request's trace, or a new one when the request came in without the
/// tracing middleware (a handler driven directly).
pub fn request_trace(trace: Option<Extension<RequestTrace>>) -> RequestTrace {
    trace.map_or_else(RequestTrace::detached, |Extension(trace)| trace)
}

/// An order: decided from the database, or `pending` from the queue.
#[utoipa::path(
    get, path = "/orders/{order_id}", tag = "orders",
    params(("order_id" = Uuid, Path)),
    responses(
        (status = 200, body = OrderView),
        (status = 401, body = crate::error::Problem),
        (status = 404, description = "Unknown, or not yours", body = crate::error::Problem),
        (status = 503, description = "Neither the database nor the queue can be asked", body = crate::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn get_order(
    State(state): State<AppState>,
    user: AuthUser,
    PathParams(order_id): PathParams<Uuid>,
) -> ApiResult<Json<OrderView>> {
    order_detail(&state, &user, order_id).await.map(Json)
}

/// The order `user` may see, as `GET /orders/{id}` answers it; 404 for an
/// order that is unknown or someone else's.
pub async fn order_detail(
    state: &AppState,
    user: &AuthUser,
    order_id: Uuid,
) -> ApiResult<OrderView> {
    find_order(state, order_id)
        .await?
        .filter(|order| user.may_see(order.customer_id))
        .ok_or(ApiError::NotFound("order"))
}

/// The order as the API knows it: decided, from the database; pending, from
/// the command queued in JetStream, which answers even while the database
/// is down.
async fn find_order(state: &AppState, order_id: Uuid) -> ApiResult<Option<OrderView>> {
    let from_db = order_records::get(&state.pool, order_id).await;
    match &from_db {
        Ok(Some(order)) if order.status != OrderStatus::Pending => return Ok(Some(order.clone())),
        Ok(_) => {}
        Err(err) if database_unreachable(err) => {}
        Err(_) => return Err(from_db.unwrap_err().into()),
    }
    match state.queue.find(order_id).await {
        Ok(Some(order)) => {
            let partition = order
                .items
                .first()
                .map_or(0, |line| partition_for(&line.sku, state.partitions));
            Ok(Some(OrderView::pending(order, partition)))
        }
        // The processor may have decided and acked it between the two reads;
        // the database has it then.
        Ok(None) => Ok(order_records::get(&state.pool, order_id).await?),
        Err(_) => Ok(from_db?),
    }
}

/// Cancel an order: its reservation is released. Queued behind the order's
/// placement, so it never races the decision; the status becomes `cancelled`
/// once the processor applies it.
#[utoipa::path(
    post, path = "/orders/{order_id}/cancel", tag = "orders",
    params(("order_id" = Uuid, Path)),
    responses(
        (status = 202, description = "Queued", body = OrderAccepted, headers(("Location" = String))),
        (status = 401, body = crate::error::Problem),
        (status = 404, description = "Unknown, or not yours", body = crate::error::Problem),
        (status = 409, description = "Already rejected, cancelled or fulfilled", body = crate::error::Problem),
        (status = 503, description = "The queue cannot take it now; see Retry-After", body = crate::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_order(
    State(state): State<AppState>,
    user: AuthUser,
    trace: Option<Extension<RequestTrace>>,
    PathParams(order_id): PathParams<Uuid>,
) -> ApiResult<Response> {
    let trace = request_trace(trace);
    let status = cancel(&state, &user, order_id, &trace).await?;
    Ok(accepted(order_id, status))
}

/// Queues the cancellation of `order_id` for `user`, as
/// `POST /orders/{id}/cancel` does; the order's status when it was queued.
pub async fn cancel(
    state: &AppState,
    user: &AuthUser,
    order_id: Uuid,
    trace: &RequestTrace,
) -> ApiResult<OrderStatus> {
    settle(state, user, order_id, Settlement::Cancel, trace).await
}

/// Fulfil (ship) a confirmed order (staff): on hand and reserved fall at the
/// locations it was allocated from once the processor applies it.
#[utoipa::path(
    post, path = "/orders/{order_id}/fulfil", tag = "orders",
    params(("order_id" = Uuid, Path)),
    responses(
        (status = 202, description = "Queued", body = OrderAccepted, headers(("Location" = String))),
        (status = 401, body = crate::error::Problem),
        (status = 403, description = "Not staff", body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 409, description = "Already rejected, cancelled or fulfilled", body = crate::error::Problem),
        (status = 503, description = "The queue cannot take it now; see Retry-After", body = crate::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn fulfil_order(
    State(state): State<AppState>,
    user: AuthUser,
    trace: Option<Extension<RequestTrace>>,
    PathParams(order_id): PathParams<Uuid>,
) -> ApiResult<Response> {
    let trace = request_trace(trace);
    let status = fulfil(&state, &user, order_id, &trace).await?;
    Ok(accepted(order_id, status))
}

/// Queues the fulfilment of `order_id` (staff), as
/// `POST /orders/{id}/fulfil` does; the order's status when it was queued.
pub async fn fulfil(
    state: &AppState,
    user: &AuthUser,
    order_id: Uuid,
    trace: &RequestTrace,
) -> ApiResult<OrderStatus> {
    user.require(Role::Staff)?;
    settle(state, user, order_id, Settlement::Fulfil, trace).await
}

#[derive(Clone, Copy, PartialEq)]
enum Settlement {
    Cancel,
    Fulfil,
}

async fn settle(
    state: &AppState,
    user: &AuthUser,
    order_id: Uuid,
    settlement: Settlement,
    trace: &RequestTrace,
) -> ApiResult<OrderStatus> {
    let order = find_order(state, order_id)
        .await?
        .filter(|order| user.may_see(order.customer_id))
        .ok_or(ApiError::NotFound("order"))?;
    if !matches!(order.status, OrderStatus::Pending | OrderStatus::Confirmed) {
        return Err(ApiError::Conflict(format!(
            "the order is {}; only a pending or confirmed order can be {}",
            order.status.as_str(),
            if settlement == Settlement::Cancel {
                "cancelled"
            } else {
                "fulfilled"
            }
        )));
    }
    let action = OrderAction {
        order_id,
        requested_by: user.id,
        requested_at: Utc::now(),
    };
    let command = match settlement {
        Settlement::Cancel => OrderCommand::CancelOrder(action),
        Settlement::Fulfil => OrderCommand::FulfilOrder(action),
    };
    state
        .queue
        .publish_action(order.partition, &command, &trace.0)
        .await
        .map_err(queue_unavailable)?;
    Ok(order.status)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListOrdersParams {
    /// Only orders in this status.
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderView>,
    pub next_cursor: Option<String>,
}

/// Orders, newest first: your own, or everyone's for staff.
#[utoipa::path(
    get, path = "/orders", tag = "orders", params(ListOrdersParams),
    responses((status = 200, body = OrderPage), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []))
)]
pub async fn list_orders(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(params): QueryParams<ListOrdersParams>,
) -> ApiResult<Json<OrderPage>> {
    orders_page(&state, &user, params).await.map(Json)
}

/// A page of the orders `user` may see, newest first, as `GET /orders`
/// answers it.
pub async fn orders_page(
    state: &AppState,
    user: &AuthUser,
    params: ListOrdersParams,
) -> ApiResult<OrderPage> {
    let status = params
        .status
        .as_deref()
        .map(OrderStatus::parse)
        .transpose()
        .map_err(|e| ApiError::field("status", e.message))?;
    let limit = page_limit(params.limit)?;
    let after = params
        .cursor
        .as_deref()
        .map(cursor::decode_time_id)
        .transpose()?;
    let customer_id = if user.role.includes(Role::Staff) {
        None
    } else {
        Some(user.id)
    };
    let mut items = order_records::list(
        &state.pool,
        &ListQuery {
            customer_id,
            status,
            after,
            limit: limit + 1,
        },
    )
    .await?;
    let next_cursor = cursor::next_page(&mut items, limit, |o| {
        cursor::encode_time_id(o.created_at, o.order_id)
    });
    Ok(OrderPage { items, next_cursor })
}

/// The page size asked for, within 1 to MAX_PAGE_LIMIT.
pub fn page_limit(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if !(1..=MAX_PAGE_LIMIT).contains(&limit) {
        return Err(ApiError::field_limit(
            "limit",
            format!("must be between 1 and {MAX_PAGE_LIMIT}"),
            MAX_PAGE_LIMIT,
        ));
    }
    Ok(limit)
}
