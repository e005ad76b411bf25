//! After a run: wait until every accepted order is decided, read the
//! decisions, and check the invariants against the database.
//!
//! The accepted order ids (with the times they were due) go into a temporary
//! table on a connection of their own, so every check is one set-based query
//! joined to exactly this run's orders. The stock checks cover every order
//! that names the run's products, including any the system accepted but
//! whose answer the client never saw (a timeout), so nothing hides there.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::TryStreamExt;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::driver::Accepted;
use crate::report::LatencyHistogram;
use crate::setup::Fixture;

/// Rows per insert when loading the accepted ids.
const LOAD_CHUNK: usize = 20_000;

/// One invariant, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// What was counted, so a failure says how it failed.
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, ok: bool, detail: String) -> Self {
        Self { name, ok, detail }
    }
}

/// Whether every check holds.
pub fn all_hold(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.ok)
}

/// The accepted orders' decisions as the database holds them.
#[derive(Debug, Default)]
pub struct Decisions {
    pub decided: u64,
    pub confirmed: u64,
    pub rejected: BTreeMap<String, u64>,
    /// From each order's due time to its `decided_at`.
    pub send_to_decided_at: LatencyHistogram,
    /// The latest `decided_at`, Unix seconds.
    pub last_decided_unix: Option<f64>,
}

/// A run's accepted orders, loaded into a temporary table.
pub struct RunOrders {
    conn: PgConnection,
    accepted: u64,
}

impl RunOrders {
    /// Connects to `database_url` and loads `accepted` (due times relative to
    /// `started_at_unix`) into the temporary table `loadgen_accepted`.
    pub async fn load(
        database_url: &str,
        accepted: &[Accepted],
        started_at_unix: f64,
    ) -> anyhow::Result<Self> {
        let mut conn = PgConnection::connect(database_url)
            .await
            .context("connect to the database")?;
        // No primary key: a system that handed one id to two requests must
        // be caught, not refused here.
        sqlx::query(
            "create temporary table loadgen_accepted (
                 id uuid not null, due_at float8 not null, decided boolean not null default false)",
        )
        .execute(&mut conn)
        .await?;
        for chunk in accepted.chunks(LOAD_CHUNK) {
            let ids: Vec<Uuid> = chunk.iter().map(|a| a.order_id).collect();
            let due: Vec<f64> = chunk
                .iter()
                .map(|a| started_at_unix + a.due.as_secs_f64())
                .collect();
            sqlx::query("insert into loadgen_accepted (id, due_at) select * from unnest($1::uuid[], $2::float8[])")
                .bind(&ids)
                .bind(&due)
                .execute(&mut conn)
                .await
                .context("load the accepted order ids")?;
        }
        sqlx::query("create index on loadgen_accepted (id)")
            .execute(&mut conn)
            .await?;
        sqlx::query("analyze loadgen_accepted")
            .execute(&mut conn)
            .await?;
        Ok(Self {
            conn,
            accepted: accepted.len() as u64,
        })
    }

    /// Waits until every accepted order is decided, or `timeout` passes;
    /// returns how many are still undecided (0 when all are).
    ///
    /// Each poll asks only about the orders not yet seen decided, and polls
    /// are spaced at least twice as far apart as the last one took, so
    /// waiting never takes more than a third of one database backend from
    /// the processor it is waiting for.
    pub async fn wait_for_decisions(&mut self, timeout: Duration) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        let mut undecided = self.accepted;
        loop {
            let asked = Instant::now();
            let newly = sqlx::query(
                "update loadgen_accepted r set decided = true
                 from orders o
                 where o.id = r.id and not r.decided and o.status <> 'pending'",
            )
            .execute(&mut self.conn)
            .await
            .context("poll for decisions")?
            .rows_affected();
            undecided = undecided.saturating_sub(newly);
            if undecided == 0 || Instant::now() >= deadline {
                return Ok(undecided);
            }
            let pause = (asked.elapsed() * 2).max(Duration::from_millis(200));
            tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// The decided accepted orders: outcomes, reasons, and send-to-decision
    /// latencies.
    pub async fn decisions(&mut self) -> anyhow::Result<Decisions> {
        let mut decisions = Decisions::default();
        let mut rows = sqlx::query_as::<_, (f64, f64, String, Option<String>)>(
            "select r.due_at, extract(epoch from o.decided_at)::float8, o.status, o.reason
             from loadgen_accepted r join orders o on o.id = r.id
             where o.status <> 'pending'",
        )
        .fetch(&mut self.conn);
        while let Some((due_at, decided_at, status, reason)) = rows.try_next().await? {
            decisions.decided += 1;
            if status == "rejected" {
                *decisions
                    .rejected
                    .entry(reason.unwrap_or_else(|| "unknown".into()))
                    .or_default() += 1;
            } else {
                decisions.confirmed += 1;
            }
            decisions
                .send_to_decided_at
                .record(Duration::from_secs_f64((decided_at - due_at).max(0.0)));
            decisions.last_decided_unix = Some(
                decisions
                    .last_decided_unix
                    .map_or(decided_at, |last| last.max(decided_at)),
            );
        }
        Ok(decisions)
    }

    /// Every invariant, over this run's accepted orders and `fixture`'s
    /// products.
    pub async fn check(&mut self, fixture: &Fixture) -> anyhow::Result<Vec<Check>> {
        let conn = &mut self.conn;
        let mut checks = Vec::new();
        // The joins below cover every accepted order of the run, a million
        // after a long soak. Without fresh statistics (a server running with
        // autovacuum, and so auto-analyze, off) the planner guesses at those
        // tables' sizes and the checks can run for many minutes.
        sqlx::query(
            "analyze orders, order_lines, order_allocations, stock_movements, stock_levels",
        )
        .execute(&mut *conn)
        .await
        .context("analyze the tables the checks join")?;

        let (total, distinct, missing, pending): (i64, i64, i64, i64) = sqlx::query_as(
            "select count(*), count(distinct r.id),
                    count(*) filter (where o.id is null), count(*) filter (where o.status = 'pending')
             from loadgen_accepted r left join orders o on o.id = r.id",
        )
        .fetch_one(&mut *conn)
        .await
        .context("count the accepted orders")?;
        checks.push(Check::new(
            "every accepted order decided",
            missing == 0 && pending == 0,
            format!(
                "{total} accepted: {} decided, {pending} still pending, {missing} unknown to the database",
                total - missing - pending
            ),
        ));
        checks.push(Check::new(
            "one order per acceptance",
            total == distinct,
            format!("{total} acceptances, {distinct} distinct order ids"),
        ));

        // Exactly once and all or nothing: a confirmed order reserved exactly
        // its lines' units once (allocations and ledger alike), a rejected
        // one nothing.
        let (bad_confirmed, bad_rejected): (i64, i64) = sqlx::query_as(
            "with run as (select distinct id from loadgen_accepted),
             lines as (select l.order_id, sum(l.quantity) units
                       from order_lines l join run on run.id = l.order_id group by 1),
             reserves as (select m.order_id, sum(m.reserved_delta) units
                          from stock_movements m join run on run.id = m.order_id
                          where m.kind = 'reserve' group by 1),
             allocations as (select a.order_id, sum(a.quantity) units
                             from order_allocations a join run on run.id = a.order_id group by 1)
             select count(*) filter (where o.status = 'confirmed'
                        and (l.units is null or coalesce(r.units, 0) <> l.units
                             or coalesce(a.units, 0) <> l.units)),
                    count(*) filter (where o.status = 'rejected'
                        and (coalesce(r.units, 0) <> 0 or coalesce(a.units, 0) <> 0))
             from orders o join run on run.id = o.id
             left join lines l on l.order_id = o.id
             left join reserves r on r.order_id = o.id
             left join allocations a on a.order_id = o.id",
        )
        .fetch_one(&mut *conn)
        .await
        .context("check each order's reservations")?;
        checks.push(Check::new(
            "decided once, all or nothing",
            bad_confirmed == 0 && bad_rejected == 0,
            format!(
                "{bad_confirmed} confirmed orders whose reservations differ from their lines, \
                 {bad_rejected} rejected orders holding a reservation"
            ),
        ));

        let (levels, out_of_bounds): (i64, i64) = sqlx::query_as(
            "select count(*), count(*) filter (where not (0 <= reserved and reserved <= on_hand))
             from stock_levels where product_id = any($1)",
        )
        .bind(&fixture.product_ids)
        .fetch_one(&mut *conn)
        .await
        .context("check the stock bounds")?;
        checks.push(Check::new(
            "0 <= reserved <= on_hand",
            out_of_bounds == 0,
            format!("{out_of_bounds} of {levels} stock levels out of bounds"),
        ));

        let drift: i64 = sqlx::query_scalar(
            "select count(*)
             from (select * from stock_levels where product_id = any($1)) s
             full join (select product_id, location_id, sum(on_hand_delta) on_hand,
                               sum(reserved_delta) reserved
                        from stock_movements where product_id = any($1) group by 1, 2) m
                  using (product_id, location_id)
             where coalesce(s.on_hand, 0) <> coalesce(m.on_hand, 0)
                or coalesce(s.reserved, 0) <> coalesce(m.reserved, 0)",
        )
        .bind(&fixture.product_ids)
        .fetch_one(&mut *conn)
        .await
        .context("reconcile the stock against the ledger")?;
        checks.push(Check::new(
            "ledger equals stock",
            drift == 0,
            format!("{drift} stock levels differ from their ledger sums"),
        ));

        // Per product: what every confirmed order naming it asked for (not
        // only the acceptances this client saw), against the stock.
        let products: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "with confirmed as (
                 select l.sku, sum(l.quantity)::int8 units
                 from order_lines l join orders o on o.id = l.order_id
                 where l.sku = any($2) and o.status = 'confirmed' group by l.sku),
             levels as (
                 select product_id, sum(on_hand)::int8 on_hand, sum(reserved)::int8 reserved
                 from stock_levels where product_id = any($1) group by 1)
             select p.sku, coalesce(lv.on_hand, 0), coalesce(lv.reserved, 0), coalesce(c.units, 0)
             from products p
             left join levels lv on lv.product_id = p.id
             left join confirmed c on c.sku = p.sku
             where p.id = any($1)",
        )
        .bind(&fixture.product_ids)
        .bind(&fixture.skus)
        .fetch_all(&mut *conn)
        .await
        .context("sum the confirmed units per product")?;
        let given = fixture.stock_per_product;
        let mismatched: Vec<&str> = products
            .iter()
            .filter(|(_, _, reserved, units)| reserved != units)
            .map(|(sku, ..)| sku.as_str())
            .collect();
        let (reserved_total, confirmed_total) =
            products.iter().fold((0, 0), |(r, c), p| (r + p.2, c + p.3));
        checks.push(Check::new(
            "reserved equals confirmed units",
            mismatched.is_empty() && products.len() == fixture.product_ids.len(),
            format!(
                "{reserved_total} units reserved, {confirmed_total} confirmed over {} product(s){}",
                products.len(),
                first_few(&mismatched)
            ),
        ));
        let oversold: Vec<&str> = products
            .iter()
            .filter(|(_, on_hand, _, units)| *units > given || *on_hand != given)
            .map(|(sku, ..)| sku.as_str())
            .collect();
        let sold_out = products.iter().filter(|p| p.3 == given).count();
        checks.push(Check::new(
            "no oversell",
            oversold.is_empty(),
            format!(
                "at most {given} units confirmed and {given} on hand per product; \
                 {sold_out} of {} products sold out{}",
                products.len(),
                first_few(&oversold)
            ),
        ));
        Ok(checks)
    }

    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// `; broken: A, B, C …` for up to five names, or nothing.
fn first_few(names: &[&str]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = names.iter().take(5).copied().collect();
    let more = if names.len() > 5 {
        format!(" and {} more", names.len() - 5)
    } else {
        String::new()
    };
    format!("; broken: {}{more}", shown.join(", "))
}
