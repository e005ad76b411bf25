//! The ledger drift metric: every interval, the replica that owns partition
//! 0 (exactly one at a time) proves stock levels against the ledger and
//! exports how many disagree.

use std::time::Duration;

use orderflow_core::metric_names;
use orderflow_core::reconciliation::reconcile;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::coordinator::OwnedPartitions;
use crate::gauge_owner::{GaugeOwner, Turn};

pub async fn run(
    pool: PgPool,
    owned: OwnedPartitions,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut owner = GaugeOwner::new(owned);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match owner.turn() {
            Turn::Export => {}
            // The new owner reports the drift it finds. The last
            // reconciliation's timestamp stays: it is true, and `max` over
            // replicas picks the new owner's newer one.
            Turn::Resign => {
                metrics::gauge!(metric_names::LEDGER_DRIFT).set(0.0);
                continue;
            }
            Turn::Idle => continue,
        }
        match reconcile(&pool).await {
            Ok(report) => {
                metrics::gauge!(metric_names::LEDGER_DRIFT).set(report.drift.len() as f64);
                metrics::gauge!(metric_names::LEDGER_RECONCILED_AT)
                    .set(chrono::Utc::now().timestamp() as f64);
                for drift in report.drift.iter().take(20) {
                    error!(?drift, "stock level differs from its ledger");
                }
            }
            Err(err) => warn!(%err, "reconciliation failed; will retry"),
        }
    }
}
