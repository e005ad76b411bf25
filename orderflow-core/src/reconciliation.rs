//! Reconciliation: the proof that every (product, location) stock level
//! equals the sums of its ledger rows. One query, used by the admin endpoint,
//! the `ingress-api reconcile` command, the processor's drift metric and the
//! tests.

use serde::Serialize;
use sqlx::PgPool;

/// A (product, location) whose stock level differs from its ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Drift {
    pub sku: String,
    pub location: String,
    /// `stock_levels.on_hand`.
    pub on_hand: i64,
    /// The sum of the ledger's `on_hand_delta`.
    pub ledger_on_hand: i64,
    /// `stock_levels.reserved`.
    pub reserved: i64,
    /// The sum of the ledger's `reserved_delta`.
    pub ledger_reserved: i64,
}

/// The outcome of one reconciliation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// Stock levels checked.
    pub levels_checked: i64,
    /// Every level that disagrees with its ledger; empty when stock is true.
    pub drift: Vec<Drift>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.drift.is_empty()
    }
}

/// A level missing on either side counts as zero there, so a ledger row for
/// a level that does not exist (or the reverse) is drift too.
const DRIFT_SQL: &str = "
    select p.sku, l.code as location,
           coalesce(s.on_hand, 0)::int8 as on_hand, coalesce(m.on_hand, 0)::int8 as ledger_on_hand,
           coalesce(s.reserved, 0)::int8 as reserved, coalesce(m.reserved, 0)::int8 as ledger_reserved
    from stock_levels s
    full join (select product_id, location_id, sum(on_hand_delta) as on_hand,
                      sum(reserved_delta) as reserved
               from stock_movements group by product_id, location_id) m
      using (product_id, location_id)
    join products p on p.id = product_id
    join locations l on l.id = location_id
    where coalesce(s.on_hand, 0) <> coalesce(m.on_hand, 0)
       or coalesce(s.reserved, 0) <> coalesce(m.reserved, 0)
    order by p.sku, l.code";

/// Compares every stock level with its ledger, in one snapshot.
pub async fn reconcile(pool: &PgPool) -> Result<Report, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // One snapshot for both queries, so a movement committing in between
    // cannot show up as drift.
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let levels_checked: i64 = sqlx::query_scalar("select count(*) from stock_levels")
        .fetch_one(&mut *tx)
        .await?;
    let drift: Vec<Drift> = sqlx::query_as(DRIFT_SQL).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(Report {
        levels_checked,
        drift,
    })
}
