//! One batch, one transaction: fence, lock, decide, write, commit.
//!
//! The statements are set-based (`unnest` over arrays), so a batch costs the
//! same handful of round trips whether it holds one order or five hundred.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use orderflow_core::command::PlaceOrder;
use orderflow_core::domain::{OrderStatus, RejectReason};
use orderflow_core::event::{
    threshold_crossing, Event, EventEnvelope, OrderConfirmed, OrderRejected, StockChanged,
};
use orderflow_core::naming::Naming;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::decision::{decide_batch, Level, Outcome, ProductStock, StockBook};

/// An order command and where it sat in the queue.
#[derive(Debug, Clone)]
pub struct QueuedOrder {
    pub stream_seq: u64,
    pub command: PlaceOrder,
}

/// What a committed batch did.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Orders decided by this batch, with their acceptance time and outcome.
    pub decided: Vec<(Uuid, DateTime<Utc>, Result<(), RejectReason>)>,
    /// Commands for orders that were already decided: redeliveries and retries.
    pub duplicates: usize,
    /// Events written to the outbox.
    pub events: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Another worker took the partition over; this one must stop.
    #[error("partition lease lost")]
    LeaseLost,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Decides `orders` (in queue order) for `partition` and commits the result,
/// provided this worker still holds the partition at `epoch`.
pub async fn decide_and_commit(
    pool: &PgPool,
    naming: &Naming,
    partition: u16,
    epoch: i64,
    orders: &[QueuedOrder],
) -> Result<BatchReport, BatchError> {
    let mut tx = pool.begin().await?;
    fence(&mut tx, partition, epoch).await?;

    let fresh = undecided(&mut tx, orders).await?;
    let mut report = BatchReport {
        duplicates: orders.len() - fresh.len(),
        ..BatchReport::default()
    };
    if let Some(last) = orders.iter().map(|o| o.stream_seq).max() {
        sqlx::query(
            "update partition_leases set last_stream_seq = greatest(last_stream_seq, $2), updated_at = now()
             where partition = $1",
        )
        .bind(i32::from(partition))
        .bind(last as i64)
        .execute(&mut *tx)
        .await?;
    }
    if fresh.is_empty() {
        tx.commit().await?;
        return Ok(report);
    }

    let mut book = lock_stock(&mut tx, &fresh).await?;
    let available_before: HashMap<String, i64> = book
        .products
        .iter()
        .map(|(sku, p)| (sku.clone(), p.available()))
        .collect();
    let line_refs: Vec<&[_]> = fresh.iter().map(|o| o.command.items.as_slice()).collect();
    let outcomes = decide_batch(&line_refs, &mut book);

    let now = Utc::now();
    let mut writes = Writes::default();
    for (order, outcome) in fresh.iter().zip(&outcomes) {
        writes.add_order(naming, partition, order, outcome, now);
        report.decided.push((
            order.command.order_id,
            order.command.accepted_at,
            match outcome {
                Outcome::Confirmed { .. } => Ok(()),
                Outcome::Rejected(reason) => Err(*reason),
            },
        ));
    }
    writes.add_stock_changes(naming, &book, &available_before, now);
    report.events = writes.outbox_ids.len();
    writes.execute(&mut tx, &book, epoch).await?;
    tx.commit().await?;
    Ok(report)
}

/// Locks this partition's lease row and checks the epoch. A worker that lost
/// its lease (its replica stalled and another took over) fails here, before
/// it can write anything, and the newer worker's batches queue behind this
/// lock rather than interleave with a stale one.
async fn fence(
    tx: &mut Transaction<'_, Postgres>,
    partition: u16,
    epoch: i64,
) -> Result<(), BatchError> {
    let current: Option<i64> =
        sqlx::query_scalar("select epoch from partition_leases where partition = $1 for update")
            .bind(i32::from(partition))
            .fetch_optional(&mut **tx)
            .await?;
    if current != Some(epoch) {
        return Err(BatchError::LeaseLost);
    }
    Ok(())
}

/// The orders of the batch not decided before, first occurrence only: a
/// command redelivered after a crash, or published twice by a client retry,
/// changes nothing.
async fn undecided<'a>(
    tx: &mut Transaction<'_, Postgres>,
    orders: &'a [QueuedOrder],
) -> Result<Vec<&'a QueuedOrder>, sqlx::Error> {
    let ids: Vec<Uuid> = orders.iter().map(|o| o.command.order_id).collect();
    let decided: HashSet<Uuid> =
        sqlx::query_scalar("select id from orders where id = any($1) and status <> 'pending'")
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
    let mut seen = HashSet::new();
    Ok(orders
        .iter()
        .filter(|o| !decided.contains(&o.command.order_id) && seen.insert(o.command.order_id))
        .collect())
}

/// Loads and locks the stock rows of every product the orders name, in
/// (product_id, location_id) order: every writer locks in that order, so
/// batches of other partitions and staff operations never deadlock with this.
async fn lock_stock(
    tx: &mut Transaction<'_, Postgres>,
    orders: &[&QueuedOrder],
) -> Result<StockBook, sqlx::Error> {
    let skus: Vec<String> = orders
        .iter()
        .flat_map(|o| o.command.items.iter().map(|l| l.sku.as_str().to_owned()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let products: Vec<(i64, String, bool, i64)> = sqlx::query_as(
        "select id, sku, archived_at is not null, low_stock_threshold from products where sku = any($1)",
    )
    .bind(&skus)
    .fetch_all(&mut **tx)
    .await?;
    let product_ids: Vec<i64> = products.iter().map(|p| p.0).collect();
    let levels: Vec<(i64, i64, i64, i64, bool)> = sqlx::query_as(
        "select s.product_id, s.location_id, s.on_hand, s.reserved, l.archived_at is null
         from stock_levels s join locations l on l.id = s.location_id
         where s.product_id = any($1)
         order by s.product_id, s.location_id
         for update of s",
    )
    .bind(&product_ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut by_id: HashMap<i64, ProductStock> = products
        .into_iter()
        .map(|(product_id, sku, archived, low_stock_threshold)| {
            (
                product_id,
                ProductStock {
                    product_id,
                    sku,
                    archived,
                    low_stock_threshold,
                    levels: Vec::new(),
                },
            )
        })
        .collect();
    for (product_id, location_id, on_hand, reserved, allocatable) in levels {
        if let Some(product) = by_id.get_mut(&product_id) {
            product.levels.push(Level {
                location_id,
                on_hand,
                reserved,
                allocatable,
            });
        }
    }
    Ok(StockBook {
        products: by_id.into_values().map(|p| (p.sku.clone(), p)).collect(),
    })
}

/// The rows a batch writes, gathered as columns for `unnest`.
#[derive(Default)]
struct Writes {
    order_ids: Vec<Uuid>,
    customer_ids: Vec<Uuid>,
    statuses: Vec<&'static str>,
    reasons: Vec<Option<&'static str>>,
    idempotency_keys: Vec<Option<String>>,
    request_hashes: Vec<Vec<u8>>,
    partitions: Vec<i32>,
    stream_seqs: Vec<i64>,
    created_ats: Vec<DateTime<Utc>>,

    line_order_ids: Vec<Uuid>,
    line_numbers: Vec<i32>,
    line_skus: Vec<String>,
    line_quantities: Vec<i64>,

    alloc_order_ids: Vec<Uuid>,
    alloc_product_ids: Vec<i64>,
    alloc_location_ids: Vec<i64>,
    alloc_quantities: Vec<i64>,

    outbox_ids: Vec<Uuid>,
    outbox_subjects: Vec<String>,
    outbox_payloads: Vec<serde_json::Value>,
}

impl Writes {
    fn add_event(&mut self, naming: &Naming, event: Event, occurred_at: DateTime<Utc>) {
        let envelope = EventEnvelope {
            event_id: Uuid::now_v7(),
            occurred_at,
            event,
        };
        self.outbox_subjects
            .push(naming.event_subject(envelope.event.kind()));
        self.outbox_ids.push(envelope.event_id);
        self.outbox_payloads
            .push(serde_json::to_value(&envelope).expect("events serialize"));
    }

    fn add_order(
        &mut self,
        naming: &Naming,
        partition: u16,
        order: &QueuedOrder,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) {
        let command = &order.command;
        let (status, reason) = match outcome {
            Outcome::Confirmed { .. } => (OrderStatus::Confirmed, None),
            Outcome::Rejected(reason) => (OrderStatus::Rejected, Some(reason.as_str())),
        };
        self.order_ids.push(command.order_id);
        self.customer_ids.push(command.customer_id);
        self.statuses.push(status.as_str());
        self.reasons.push(reason);
        self.idempotency_keys.push(command.idempotency_key.clone());
        self.request_hashes
            .push(hex::decode(&command.request_hash).unwrap_or_default());
        self.partitions.push(i32::from(partition));
        self.stream_seqs.push(order.stream_seq as i64);
        self.created_ats.push(command.accepted_at);
        for (index, line) in command.items.iter().enumerate() {
            self.line_order_ids.push(command.order_id);
            self.line_numbers.push(index as i32 + 1);
            self.line_skus.push(line.sku.as_str().to_owned());
            self.line_quantities.push(line.quantity.get());
        }
        let event = match outcome {
            Outcome::Confirmed { allocations } => {
                for allocation in allocations {
                    self.alloc_order_ids.push(command.order_id);
                    self.alloc_product_ids.push(allocation.product_id);
                    self.alloc_location_ids.push(allocation.location_id);
                    self.alloc_quantities.push(allocation.quantity);
                }
                Event::OrderConfirmed(OrderConfirmed {
                    order_id: command.order_id,
                    customer_id: command.customer_id,
                    items: command.items.clone(),
                })
            }
            Outcome::Rejected(reason) => Event::OrderRejected(OrderRejected {
                order_id: command.order_id,
                customer_id: command.customer_id,
                reason: *reason,
                items: command.items.clone(),
            }),
        };
        self.add_event(naming, event, now);
    }

    /// One `stock.changed` per product whose reservations moved, and a
    /// `stock.low` when the batch took its available units down through the
    /// threshold. Reservations only ever lower availability, so a batch can
    /// cross down at most once per product.
    fn add_stock_changes(
        &mut self,
        naming: &Naming,
        book: &StockBook,
        available_before: &HashMap<String, i64>,
        now: DateTime<Utc>,
    ) {
        let mut skus: Vec<&String> = book.products.keys().collect();
        skus.sort();
        for sku in skus {
            let product = &book.products[sku];
            let before = available_before[sku];
            let after = product.available();
            if before == after {
                continue;
            }
            let on_hand: i64 = product.levels.iter().map(|l| l.on_hand).sum();
            self.add_event(
                naming,
                Event::StockChanged(StockChanged {
                    sku: sku.clone(),
                    on_hand,
                    reserved: on_hand - after,
                    available: after,
                }),
                now,
            );
            if let Some(event) = threshold_crossing(sku, before, after, product.low_stock_threshold)
            {
                self.add_event(naming, event, now);
            }
        }
    }

    async fn execute(
        self,
        tx: &mut Transaction<'_, Postgres>,
        book: &StockBook,
        epoch: i64,
    ) -> Result<(), sqlx::Error> {
        // The ingress may have recorded the order as pending; the decision
        // replaces that row, and never a decided one.
        sqlx::query(
            "insert into orders (id, customer_id, status, reason, idempotency_key, request_hash,
                                 partition, stream_seq, decided_epoch, created_at, decided_at)
             select o.id, o.customer_id, o.status, o.reason, o.idempotency_key, o.request_hash,
                    o.partition, o.stream_seq, $10, o.created_at, now()
             from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bytea[],
                         $7::int4[], $8::int8[], $9::timestamptz[])
                  as o(id, customer_id, status, reason, idempotency_key, request_hash,
                       partition, stream_seq, created_at)
             on conflict (id) do update
                set status = excluded.status, reason = excluded.reason,
                    stream_seq = excluded.stream_seq, decided_epoch = excluded.decided_epoch,
                    decided_at = excluded.decided_at,
                    updated_at = now()
                where orders.status = 'pending'",
        )
        .bind(&self.order_ids)
        .bind(&self.customer_ids)
        .bind(&self.statuses)
        .bind(&self.reasons)
        .bind(&self.idempotency_keys)
        .bind(&self.request_hashes)
        .bind(&self.partitions)
        .bind(&self.stream_seqs)
        .bind(&self.created_ats)
        .bind(epoch)
        .execute(&mut **tx)
        .await?;

        sqlx::query(
            "insert into order_lines (order_id, line_no, sku, quantity)
             select * from unnest($1::uuid[], $2::int4[], $3::text[], $4::int8[])
             on conflict do nothing",
        )
        .bind(&self.line_order_ids)
        .bind(&self.line_numbers)
        .bind(&self.line_skus)
        .bind(&self.line_quantities)
        .execute(&mut **tx)
        .await?;

        if !self.alloc_order_ids.is_empty() {
            // Every reservation is also a ledger row, so stock_levels stays
            // the sum of the ledger; one statement writes both.
            sqlx::query(
                "with allocated as (
                    insert into order_allocations (order_id, product_id, location_id, quantity)
                    select * from unnest($1::uuid[], $2::int8[], $3::int8[], $4::int8[])
                    returning order_id, product_id, location_id, quantity)
                 insert into stock_movements (product_id, location_id, kind, on_hand_delta,
                                              reserved_delta, order_id, correlation_id)
                 select product_id, location_id, 'reserve', 0, quantity, order_id, order_id
                 from allocated",
            )
            .bind(&self.alloc_order_ids)
            .bind(&self.alloc_product_ids)
            .bind(&self.alloc_location_ids)
            .bind(&self.alloc_quantities)
            .execute(&mut **tx)
            .await?;

            let mut level_products = Vec::new();
            let mut level_locations = Vec::new();
            let mut level_reserved = Vec::new();
            let touched: HashSet<(i64, i64)> = self
                .alloc_product_ids
                .iter()
                .copied()
                .zip(self.alloc_location_ids.iter().copied())
                .collect();
            for product in book.products.values() {
                for level in &product.levels {
                    if touched.contains(&(product.product_id, level.location_id)) {
                        level_products.push(product.product_id);
                        level_locations.push(level.location_id);
                        level_reserved.push(level.reserved);
                    }
                }
            }
            sqlx::query(
                "update stock_levels s set reserved = v.reserved, updated_at = now()
                 from unnest($1::int8[], $2::int8[], $3::int8[]) as v(product_id, location_id, reserved)
                 where s.product_id = v.product_id and s.location_id = v.location_id",
            )
            .bind(&level_products)
            .bind(&level_locations)
            .bind(&level_reserved)
            .execute(&mut **tx)
            .await?;
        }

        sqlx::query(
            "insert into outbox (event_id, subject, payload)
             select * from unnest($1::uuid[], $2::text[], $3::jsonb[])",
        )
        .bind(&self.outbox_ids)
        .bind(&self.outbox_subjects)
        .bind(&self.outbox_payloads)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}
