//! The baseline: how a plain synchronous API takes orders, one transaction
//! per order, served in-process so both designs are measured on one machine,
//! one database and one client.
//!
//! `POST /orders` locks the products it names (`for share`, in id order) and
//! their stock rows (`for update`, in (product_id, location_id) order, as the
//! processor and the staff operations do), decides with the processor's own
//! rules ([`order_processor::decision::decide_order`]), writes the order, its
//! lines, its allocations and `reserve` ledger rows exactly as the processor
//! does, updates the stock levels and commits, then answers `201` with the
//! decision. So every invariant check applies to it unchanged.
//!
//! It leaves out what would only slow it down: it checks no signature on the
//! bearer token (it reads the customer id from it), and it writes no outbox
//! events. Its figures are therefore, if anything, flattering.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use order_processor::batch::lock_stock;
use order_processor::decision::{decide_order, Outcome};
use orderflow_core::domain::{request_hash, OrderLine};
use orderflow_core::limits::MAX_ORDER_LINES;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

#[derive(Clone)]
struct BaselineState {
    pool: PgPool,
    /// Whether a database error was reported already (the first is enough).
    reported: Arc<AtomicBool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceOrderRequest {
    items: Vec<OrderLine>,
}

#[derive(Serialize)]
struct PlaceOrderAnswer {
    order_id: Uuid,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// `POST /orders` of the per-order design.
pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/orders", post(place_order))
        .with_state(BaselineState {
            pool,
            reported: Arc::new(AtomicBool::new(false)),
        })
}

/// The baseline, serving.
pub struct BaselineServer {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl BaselineServer {
    /// Serves [`router`] on `addr` (port 0: any free port).
    pub async fn start(pool: PgPool, addr: SocketAddr) -> anyhow::Result<Self> {
        // The same accept queue as ingress-api's, so neither design drops
        // connections the other would have queued.
        let listener = orderflow_core::listener::bind(addr)
            .with_context(|| format!("bind the baseline to {addr}"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            axum::serve(listener, router(pool))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .into_future(),
        );
        Ok(Self { addr, stop, task })
    }

    pub fn orders_url(&self) -> String {
        format!("http://{}/orders", self.addr)
    }

    /// Stops serving once the requests in hand are answered.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?.context("serve the baseline")
    }
}

async fn place_order(
    State(state): State<BaselineState>,
    headers: HeaderMap,
    Json(request): Json<PlaceOrderRequest>,
) -> Response {
    let Some(customer_id) = customer_id(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if request.items.is_empty() || request.items.len() > MAX_ORDER_LINES {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    }
    match place(&state.pool, customer_id, &request.items).await {
        Ok(answer) => (StatusCode::CREATED, Json(answer)).into_response(),
        Err(err) => {
            if !state.reported.swap(true, Ordering::Relaxed) {
                eprintln!("baseline: placing an order failed: {err}");
            }
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// The `sub` claim of the bearer token, read without checking the signature
/// (this is a benchmark of the ordering path, not of authentication).
fn customer_id(headers: &HeaderMap) -> Option<Uuid> {
    #[derive(Deserialize)]
    struct Claims {
        sub: Uuid,
    }
    let token = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<Claims>(&json).ok().map(|c| c.sub)
}

/// One order, one transaction.
async fn place(
    pool: &PgPool,
    customer_id: Uuid,
    lines: &[OrderLine],
) -> Result<PlaceOrderAnswer, sqlx::Error> {
    let order_id = Uuid::now_v7();
    let mut skus: Vec<String> = lines.iter().map(|l| l.sku.as_str().to_owned()).collect();
    skus.sort_unstable();
    skus.dedup();

    let mut tx = pool.begin().await?;
    // The processor's own lock, so both designs lock and read stock alike.
    let mut book = lock_stock(&mut tx, &skus, &[]).await?;

    let outcome = decide_order(lines, &mut book);
    let (status, reason) = match &outcome {
        Outcome::Confirmed { .. } => ("confirmed", None),
        Outcome::Rejected(reason) => ("rejected", Some(reason.as_str())),
    };
    // Never queued, so no partition or stream sequence of its own: partition
    // 0 and no sequence. decided_at is the clock now, once the locks were
    // granted and the order decided, not the transaction's start.
    sqlx::query(
        "insert into orders (id, customer_id, status, reason, request_hash, partition,
                             created_at, decided_at)
         values ($1, $2, $3, $4, $5, 0, now(), clock_timestamp())",
    )
    .bind(order_id)
    .bind(customer_id)
    .bind(status)
    .bind(reason)
    .bind(request_hash(lines))
    .execute(&mut *tx)
    .await?;
    let line_numbers: Vec<i32> = (1..=lines.len() as i32).collect();
    let line_skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
    let line_quantities: Vec<i64> = lines.iter().map(|l| l.quantity.get()).collect();
    sqlx::query(
        "insert into order_lines (order_id, line_no, sku, quantity)
         select $1, * from unnest($2::int4[], $3::text[], $4::int8[])",
    )
    .bind(order_id)
    .bind(&line_numbers)
    .bind(&line_skus)
    .bind(&line_quantities)
    .execute(&mut *tx)
    .await?;

    if let Outcome::Confirmed { allocations } = &outcome {
        let products: Vec<i64> = allocations.iter().map(|a| a.product_id).collect();
        let locations: Vec<i64> = allocations.iter().map(|a| a.location_id).collect();
        let quantities: Vec<i64> = allocations.iter().map(|a| a.quantity).collect();
        // Every reservation is also a ledger row, as the processor writes it.
        sqlx::query(
            "with allocated as (
                insert into order_allocations (order_id, product_id, location_id, quantity)
                select $1, * from unnest($2::int8[], $3::int8[], $4::int8[])
                returning order_id, product_id, location_id, quantity)
             insert into stock_movements (product_id, location_id, kind, on_hand_delta,
                                          reserved_delta, order_id, correlation_id)
             select product_id, location_id, 'reserve', 0, quantity, order_id, order_id
             from allocated",
        )
        .bind(order_id)
        .bind(&products)
        .bind(&locations)
        .bind(&quantities)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update stock_levels s set reserved = s.reserved + v.quantity, updated_at = now()
             from unnest($1::int8[], $2::int8[], $3::int8[]) as v(product_id, location_id, quantity)
             where s.product_id = v.product_id and s.location_id = v.location_id",
        )
        .bind(&products)
        .bind(&locations)
        .bind(&quantities)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(PlaceOrderAnswer {
        order_id,
        status,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn token_for(claims: &str) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "Bearer {}.{}.signature",
            engine.encode(r#"{"alg":"HS256"}"#),
            engine.encode(claims)
        )
    }

    #[test]
    fn the_customer_is_the_tokens_subject() {
        let id = Uuid::new_v4();
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&token_for(&format!(
                r#"{{"sub":"{id}","role":"customer"}}"#
            )))
            .unwrap(),
        );
        assert_eq!(customer_id(&headers), Some(id));
    }

    #[test]
    fn a_missing_or_unreadable_token_names_no_customer() {
        assert_eq!(customer_id(&HeaderMap::new()), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static("Bearer not-a-jwt"),
        );
        assert_eq!(customer_id(&headers), None);
        headers.insert(
            "authorization",
            HeaderValue::from_str(&token_for(r#"{"sub":"nope"}"#)).unwrap(),
        );
        assert_eq!(customer_id(&headers), None);
    }
}
