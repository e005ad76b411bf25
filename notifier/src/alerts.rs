//! Low-stock alerts: `stock.low` opens one, `stock.recovered` resolves it.
//!
//! The schema guarantees the invariant ("at most one active alert per
//! product", through the partial unique index
//! `stock_alerts_one_active_per_product`, and one alert per raising event,
//! through `stock_alerts_raised_event_key`); this module only asks for the
//! change and lets `on conflict do nothing` absorb the cases where the alert
//! is already open.

use orderflow_core::event::{Event, EventEnvelope, StockThresholdCrossed};
use sqlx::PgConnection;

/// What an event did to the alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertChange {
    /// A new active alert was opened.
    Opened,
    /// The product already had an active alert; nothing changed.
    AlreadyActive,
    /// The product's active alert was resolved.
    Resolved,
    /// The product had no active alert to resolve.
    NoneActive,
    /// No product has the event's sku, so there is nothing to attach an alert to.
    UnknownSku,
}

/// Whether [`apply`] changes anything for `event`: only threshold events do.
pub fn acts_on(event: &Event) -> bool {
    matches!(event, Event::StockLow(_) | Event::StockRecovered(_))
}

/// Applies a threshold event to the alerts; other events change nothing and
/// answer `None`.
///
/// Called once per new event, in stream order, inside the batch transaction:
/// a low, a recovery and a low again for one product in one batch must open,
/// resolve and reopen in that order, which a single set-based statement could
/// not promise. Threshold crossings are rare next to order events, so the
/// extra round trips cost little.
pub async fn apply(
    conn: &mut PgConnection,
    envelope: &EventEnvelope,
) -> Result<Option<AlertChange>, sqlx::Error> {
    let change = match &envelope.event {
        Event::StockLow(crossed) => open(conn, envelope, crossed).await?,
        Event::StockRecovered(crossed) => resolve(conn, envelope, crossed).await?,
        _ => return Ok(None),
    };
    if change == AlertChange::UnknownSku {
        // The processor only raises these for products it just changed, so
        // this means the catalogue and the events disagree: worth a look.
        tracing::warn!(
            event_id = %envelope.event_id,
            sku = %crossed_sku(&envelope.event),
            kind = envelope.event.kind(),
            "threshold event for an unknown sku; no alert changed"
        );
    } else {
        tracing::debug!(
            event_id = %envelope.event_id,
            sku = %crossed_sku(&envelope.event),
            change = ?change,
            "low-stock alert updated"
        );
    }
    Ok(Some(change))
}

fn crossed_sku(event: &Event) -> &str {
    match event {
        Event::StockLow(c) | Event::StockRecovered(c) => &c.sku,
        _ => "",
    }
}

async fn open(
    conn: &mut PgConnection,
    envelope: &EventEnvelope,
    crossed: &StockThresholdCrossed,
) -> Result<AlertChange, sqlx::Error> {
    // One round trip that also tells "already active" from "unknown sku".
    let (product_exists, opened): (bool, bool) = sqlx::query_as(
        "with product as (select id, sku from products where sku = $1),
         opened as (
             insert into stock_alerts
                 (product_id, sku, state, available, threshold, raised_event_id, raised_at)
             select id, sku, 'active', $2, $3, $4, $5 from product
             on conflict do nothing
             returning id
         )
         select exists (select 1 from product), exists (select 1 from opened)",
    )
    .bind(&crossed.sku)
    .bind(crossed.available)
    .bind(crossed.threshold)
    .bind(envelope.event_id)
    .bind(envelope.occurred_at)
    .fetch_one(conn)
    .await?;
    Ok(match (product_exists, opened) {
        (false, _) => AlertChange::UnknownSku,
        (true, true) => AlertChange::Opened,
        (true, false) => AlertChange::AlreadyActive,
    })
}

async fn resolve(
    conn: &mut PgConnection,
    envelope: &EventEnvelope,
    crossed: &StockThresholdCrossed,
) -> Result<AlertChange, sqlx::Error> {
    let (product_exists, resolved): (bool, bool) = sqlx::query_as(
        "with product as (select id from products where sku = $1),
         resolved as (
             update stock_alerts a
             set state = 'resolved', resolved_event_id = $2, resolved_at = $3
             from product p
             where a.product_id = p.id and a.state = 'active'
             returning a.id
         )
         select exists (select 1 from product), exists (select 1 from resolved)",
    )
    .bind(&crossed.sku)
    .bind(envelope.event_id)
    .bind(envelope.occurred_at)
    .fetch_one(conn)
    .await?;
    Ok(match (product_exists, resolved) {
        (false, _) => AlertChange::UnknownSku,
        (true, true) => AlertChange::Resolved,
        (true, false) => AlertChange::NoneActive,
    })
}
