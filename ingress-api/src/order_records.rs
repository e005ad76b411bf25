//! Reading orders from the database.

use chrono::{DateTime, Utc};
use orderflow_core::command::PlaceOrder;
use orderflow_core::domain::{OrderLine, OrderStatus, Quantity, Sku};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// An order as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: Uuid,
    pub status: OrderStatus,
    /// Why it was rejected, for rejected orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub items: Vec<OrderLine>,
    /// When ingress-api accepted it.
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub customer_id: Uuid,
    /// The partition the order was queued on; later commands about it go there.
    #[serde(skip)]
    pub partition: u16,
}

impl OrderView {
    /// A queued order nobody has decided yet.
    pub fn pending(order: PlaceOrder, partition: u16) -> Self {
        Self {
            partition,
            order_id: order.order_id,
            status: OrderStatus::Pending,
            reason: None,
            items: order.items,
            created_at: order.accepted_at,
            decided_at: None,
            customer_id: order.customer_id,
        }
    }
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    customer_id: Uuid,
    status: String,
    reason: Option<String>,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    partition: i32,
}

pub async fn get(pool: &PgPool, order_id: Uuid) -> Result<Option<OrderView>, sqlx::Error> {
    let row: Option<OrderRow> = sqlx::query_as(
        "select id, customer_id, status, reason, created_at, decided_at, partition from orders where id = $1",
    )
    .bind(order_id)
    .fetch_optional(pool)
    .await?;
    match row {
        None => Ok(None),
        Some(row) => Ok(with_lines(pool, vec![row]).await?.pop()),
    }
}

/// The request hash and status recorded for an order, for `Idempotency-Key` checks.
pub async fn request_hash(
    pool: &PgPool,
    order_id: Uuid,
) -> Result<Option<(Vec<u8>, String)>, sqlx::Error> {
    sqlx::query_as("select request_hash, status from orders where id = $1")
        .bind(order_id)
        .fetch_optional(pool)
        .await
}

/// A page of orders, newest first.
pub struct ListQuery {
    /// Only this customer's orders; `None` for everyone's.
    pub customer_id: Option<Uuid>,
    pub status: Option<OrderStatus>,
    /// Continue after this (created_at, id).
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

pub async fn list(pool: &PgPool, query: &ListQuery) -> Result<Vec<OrderView>, sqlx::Error> {
    let (after_time, after_id) = query.after.unzip();
    let rows: Vec<OrderRow> = sqlx::query_as(
        "select id, customer_id, status, reason, created_at, decided_at, partition from orders
         where ($1::uuid is null or customer_id = $1)
           and ($2::text is null or status = $2)
           and ($3::timestamptz is null or (created_at, id) < ($3, $4))
         order by created_at desc, id desc
         limit $5",
    )
    .bind(query.customer_id)
    .bind(query.status.map(|s| s.as_str()))
    .bind(after_time)
    .bind(after_id)
    .bind(query.limit)
    .fetch_all(pool)
    .await?;
    with_lines(pool, rows).await
}

async fn with_lines(pool: &PgPool, rows: Vec<OrderRow>) -> Result<Vec<OrderView>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let lines: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "select order_id, sku, quantity from order_lines where order_id = any($1) order by order_id, line_no",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut by_order: std::collections::HashMap<Uuid, Vec<OrderLine>> = Default::default();
    for (order_id, sku, quantity) in lines {
        // Rows were validated on the way in; a row that no longer parses is
        // skipped rather than failing the whole answer.
        if let (Ok(sku), Ok(quantity)) = (Sku::parse(&sku), Quantity::try_from(quantity)) {
            by_order
                .entry(order_id)
                .or_default()
                .push(OrderLine { sku, quantity });
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| OrderView {
            order_id: row.id,
            status: OrderStatus::parse(&row.status).unwrap_or(OrderStatus::Pending),
            reason: row.reason,
            items: by_order.remove(&row.id).unwrap_or_default(),
            created_at: row.created_at,
            decided_at: row.decided_at,
            customer_id: row.customer_id,
            partition: row.partition as u16,
        })
        .collect())
}
