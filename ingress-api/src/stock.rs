//! Staff stock operations, each one short transaction that locks the
//! product's stock rows in the same (product, location) order the processor
//! uses, writes the ledger and the outbox, and commits.

use chrono::Utc;
use orderflow_core::event::{threshold_crossing, Event, EventEnvelope, StockChanged};
use orderflow_core::naming::Naming;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// A product's stock as one operation found and left it.
pub struct LockedProduct {
    pub product_id: i64,
    pub sku: String,
    pub threshold: i64,
    /// available over all locations before the operation.
    pub available_before: i64,
}

/// Looks the product up and locks all its stock rows (creating the row for
/// `location_id` first if there is none), in location order.
pub async fn lock_product(
    tx: &mut Transaction<'_, Postgres>,
    sku: &str,
    location_id: i64,
) -> ApiResult<LockedProduct> {
    let (product_id, threshold): (i64, i64) =
        sqlx::query_as("select id, low_stock_threshold from products where sku = $1")
            .bind(sku)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| ApiError::field("sku", format!("no product has sku {sku}")))?;
    sqlx::query(
        "insert into stock_levels (product_id, location_id) values ($1, $2) on conflict do nothing",
    )
    .bind(product_id)
    .bind(location_id)
    .execute(&mut **tx)
    .await?;
    let available_before: i64 = sqlx::query_scalar(
        "select coalesce(sum(on_hand - reserved), 0)::int8 from (
            select on_hand, reserved from stock_levels where product_id = $1
            order by location_id for update) locked",
    )
    .bind(product_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(LockedProduct {
        product_id,
        sku: sku.to_owned(),
        threshold,
        available_before,
    })
}

/// The id of an active location by code.
pub async fn active_location(
    tx: &mut Transaction<'_, Postgres>,
    field: &str,
    code: &str,
) -> ApiResult<i64> {
    let row: Option<(i64, bool)> =
        sqlx::query_as("select id, archived_at is not null from locations where code = $1")
            .bind(code)
            .fetch_optional(&mut **tx)
            .await?;
    match row {
        None => Err(ApiError::field(
            field,
            format!("no location has code {code}"),
        )),
        Some((_, true)) => Err(ApiError::field(
            field,
            format!("location {code} is archived"),
        )),
        Some((id, false)) => Ok(id),
    }
}

/// Writes the events describing the product's change to the outbox:
/// `stock.changed`, and `stock.low` or `stock.recovered` on a crossing.
pub async fn record_stock_events(
    tx: &mut Transaction<'_, Postgres>,
    naming: &Naming,
    product: &LockedProduct,
) -> ApiResult<()> {
    let (on_hand, reserved): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(on_hand), 0)::int8, coalesce(sum(reserved), 0)::int8
         from stock_levels where product_id = $1",
    )
    .bind(product.product_id)
    .fetch_one(&mut **tx)
    .await?;
    let after = on_hand - reserved;
    let mut events = vec![Event::StockChanged(StockChanged {
        sku: product.sku.clone(),
        on_hand,
        reserved,
        available: after,
    })];
    events.extend(threshold_crossing(
        &product.sku,
        product.available_before,
        after,
        product.threshold,
    ));
    let now = Utc::now();
    for event in events {
        let envelope = EventEnvelope {
            event_id: Uuid::now_v7(),
            occurred_at: now,
            event,
        };
        sqlx::query("insert into outbox (event_id, subject, payload) values ($1, $2, $3)")
            .bind(envelope.event_id)
            .bind(naming.event_subject(envelope.event.kind()))
            .bind(serde_json::to_value(&envelope).map_err(anyhow::Error::from)?)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
