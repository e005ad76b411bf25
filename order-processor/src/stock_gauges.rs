//! Stock figures for dashboards: how many products are low on stock and how
//! many units are available at each location.
//!
//! Like the queue gauges, they are exported by the replica that owns
//! partition 0, so exactly one replica reports them. Low stock means what
//! `GET /dashboard` means: an active product whose available units over all
//! locations are at or below its threshold.

use std::time::Duration;

use orderflow_core::metric_names;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::coordinator::OwnedPartitions;
use crate::gauge_owner::{GaugeOwner, Turn};

/// How often the figures are refreshed.
pub const INTERVAL: Duration = Duration::from_secs(5);

pub async fn run(
    pool: PgPool,
    owned: OwnedPartitions,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut owner = GaugeOwner::new(owned);
    let mut exported: Option<StockFigures> = None;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match owner.turn() {
            Turn::Export => match measure(&pool).await {
                Ok(figures) => exported = Some(figures),
                Err(err) => warn!(%err, "could not measure stock for the metrics; will retry"),
            },
            Turn::Resign => {
                if let Some(figures) = exported.take() {
                    zero(&figures);
                }
            }
            Turn::Idle => {}
        }
    }
}

/// Sets every gauge `figures` exported to 0.
fn zero(figures: &StockFigures) {
    metrics::gauge!(metric_names::LOW_STOCK_PRODUCTS).set(0.0);
    for (location, _) in &figures.available_by_location {
        metrics::gauge!(metric_names::STOCK_AVAILABLE, "location" => location.clone()).set(0.0);
    }
}

/// What one measurement found.
#[derive(Debug, Clone, PartialEq)]
pub struct StockFigures {
    pub low_stock_products: i64,
    /// (location code, available units), for every active location.
    pub available_by_location: Vec<(String, i64)>,
}

/// Reads the figures in one snapshot and sets the gauges.
pub async fn measure(pool: &PgPool) -> sqlx::Result<StockFigures> {
    let mut tx = pool.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let low_stock_products: i64 = sqlx::query_scalar(
        "select count(*) from (
             select p.low_stock_threshold,
                    coalesce(sum(s.on_hand - s.reserved), 0) as available
             from products p left join stock_levels s on s.product_id = p.id
             where p.archived_at is null
             group by p.id) per_product
         where available <= low_stock_threshold",
    )
    .fetch_one(&mut *tx)
    .await?;
    let available_by_location: Vec<(String, i64)> = sqlx::query_as(
        "select l.code, coalesce(sum(s.on_hand - s.reserved), 0)::int8
         from locations l
         left join stock_levels s on s.location_id = l.id
             and exists (select 1 from products p
                         where p.id = s.product_id and p.archived_at is null)
         where l.archived_at is null
         group by l.code order by l.code",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;

    metrics::gauge!(metric_names::LOW_STOCK_PRODUCTS).set(low_stock_products as f64);
    for (location, available) in &available_by_location {
        metrics::gauge!(metric_names::STOCK_AVAILABLE, "location" => location.clone())
            .set(*available as f64);
    }
    Ok(StockFigures {
        low_stock_products,
        available_by_location,
    })
}
