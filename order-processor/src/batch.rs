//! One batch, one transaction: fence, lock, apply the commands in queue
//! order, write, commit.
//!
//! Placements are decided, cancellations release what their order reserved,
//! fulfilments ship it. All three pass through here, in the order the
//! partition's queue holds them, so a cancellation can never race the
//! decision it follows. The statements are set-based (`unnest` over arrays),
//! so a batch costs the same handful of round trips whether it holds one
//! command or five hundred.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use orderflow_core::command::{OrderAction, OrderCommand, PlaceOrder};
use orderflow_core::domain::{OrderLine, OrderStatus, Quantity, RejectReason, Sku};
use orderflow_core::event::{
    threshold_crossing, Event, EventEnvelope, OrderConfirmed, OrderRejected, OrderSettled,
    StockChanged,
};
use orderflow_core::naming::Naming;
use orderflow_core::trace_context::{MessageTrace, TraceId};
use sqlx::{PgPool, Postgres, Transaction};
use tracing::debug;
use uuid::Uuid;

use crate::decision::{
    decide_order, release, ship, Allocation, Level, Outcome, ProductStock, StockBook,
};

/// A command and where it sat in the queue.
#[derive(Debug, Clone)]
pub struct QueuedCommand {
    pub stream_seq: u64,
    pub command: OrderCommand,
    /// The trace context and request id the command's message carried; the
    /// events the command causes carry them on.
    pub trace: MessageTrace,
}

/// What a committed batch did.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Orders decided by this batch, with their acceptance time and outcome.
    pub decided: Vec<(Uuid, DateTime<Utc>, Result<(), RejectReason>)>,
    /// The trace id of each order in `decided`, in the same order.
    pub decided_traces: Vec<Option<TraceId>>,
    /// Orders cancelled by this batch.
    pub cancelled: usize,
    /// Orders fulfilled by this batch.
    pub fulfilled: usize,
    /// Commands that changed nothing: redelivered placements, and
    /// cancellations or fulfilments of orders no longer confirmed.
    pub no_ops: usize,
    /// Events written to the outbox.
    pub events: usize,
}

impl BatchReport {
    /// Adds what a later commit of the same batch did.
    pub fn absorb(&mut self, other: BatchReport) {
        self.decided.extend(other.decided);
        self.decided_traces.extend(other.decided_traces);
        self.cancelled += other.cancelled;
        self.fulfilled += other.fulfilled;
        self.no_ops += other.no_ops;
        self.events += other.events;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Another worker took the partition over; this one must stop.
    #[error("partition lease lost")]
    LeaseLost,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Whether a failed commit may succeed if tried again as it is.
///
/// Only errors about the data are not: SQLSTATE class 22 (data exception,
/// such as a NUL byte in text or a value out of range for its column), class
/// 23 (integrity constraint violation), and a value sqlx could not encode.
/// The same commands fail the same way every time, so the worker isolates
/// the command at fault instead of holding the partition. Everything else
/// (connection and I/O errors, pool timeouts, serialization failures,
/// deadlocks, the database shutting down, and whatever is not recognised)
/// is held and retried in queue order: dead-lettering good orders because
/// the database was briefly unwell would be far worse than waiting.
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => !matches!(
            db.code().as_deref().map(|code| code.get(..2)),
            Some(Some("22" | "23"))
        ),
        sqlx::Error::Encode(_) => false,
        _ => true,
    }
}

/// A decided order a later command in the batch may act on.
struct KnownOrder {
    customer_id: Uuid,
    status: OrderStatus,
    allocations: Vec<Allocation>,
    items: Vec<OrderLine>,
}

/// Applies `commands` (in queue order) for `partition` and commits the
/// result, provided this worker still holds the partition at `epoch`.
pub async fn decide_and_commit(
    pool: &PgPool,
    naming: &Naming,
    partition: u16,
    epoch: i64,
    commands: &[QueuedCommand],
) -> Result<BatchReport, BatchError> {
    let mut tx = pool.begin().await?;
    let last_stream_seq = commands.iter().map(|c| c.stream_seq).max().unwrap_or(0);
    fence(&mut tx, partition, epoch, last_stream_seq).await?;

    let placements: Vec<&PlaceOrder> = commands
        .iter()
        .filter_map(|c| match &c.command {
            OrderCommand::PlaceOrder(place) => Some(place),
            _ => None,
        })
        .collect();
    let targets: Vec<Uuid> = commands
        .iter()
        .filter(|c| !matches!(c.command, OrderCommand::PlaceOrder(_)))
        .map(|c| c.command.order_id())
        .collect();
    let decided_before = decided(&mut tx, &placements).await?;
    let mut known = load_known(&mut tx, &targets).await?;

    let skus: Vec<String> = placements
        .iter()
        .filter(|p| !decided_before.contains(&p.order_id))
        .flat_map(|p| p.items.iter().map(|l| l.sku.as_str().to_owned()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let product_ids: Vec<i64> = known
        .values()
        .flat_map(|o| o.allocations.iter().map(|a| a.product_id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if skus.is_empty() && product_ids.is_empty() {
        tx.commit().await?;
        return Ok(BatchReport {
            no_ops: commands.len(),
            ..BatchReport::default()
        });
    }
    let mut book = lock_stock(&mut tx, &skus, &product_ids).await?;
    let before = book.clone();

    let now = Utc::now();
    let mut report = BatchReport::default();
    let mut writes = Writes::default();
    let mut placed = HashSet::new();
    for queued in commands {
        match &queued.command {
            OrderCommand::PlaceOrder(place) => {
                if decided_before.contains(&place.order_id) || !placed.insert(place.order_id) {
                    report.no_ops += 1;
                    continue;
                }
                let outcome = decide_order(&place.items, &mut book);
                writes.add_placement(naming, partition, queued, place, &outcome, now);
                report.decided_traces.push(queued.trace.trace_id());
                report.decided.push((
                    place.order_id,
                    place.accepted_at,
                    match &outcome {
                        Outcome::Confirmed { .. } => Ok(()),
                        Outcome::Rejected(reason) => Err(*reason),
                    },
                ));
                if let Outcome::Confirmed { allocations } = outcome {
                    known.insert(
                        place.order_id,
                        KnownOrder {
                            customer_id: place.customer_id,
                            status: OrderStatus::Confirmed,
                            allocations,
                            items: place.items.clone(),
                        },
                    );
                }
            }
            OrderCommand::CancelOrder(action) | OrderCommand::FulfilOrder(action) => {
                let cancel = matches!(queued.command, OrderCommand::CancelOrder(_));
                let Some(order) = known
                    .get_mut(&action.order_id)
                    .filter(|o| o.status == OrderStatus::Confirmed)
                else {
                    // Only a confirmed order can be cancelled or fulfilled;
                    // anything else (already settled, rejected, unknown) is a
                    // repeat or a race the API lost, and changes nothing.
                    debug!(order_id = %action.order_id, cancel, "order action changes nothing");
                    report.no_ops += 1;
                    continue;
                };
                if cancel {
                    release(&mut book, &order.allocations);
                    order.status = OrderStatus::Cancelled;
                    report.cancelled += 1;
                } else {
                    ship(&mut book, &order.allocations);
                    order.status = OrderStatus::Fulfilled;
                    report.fulfilled += 1;
                }
                writes.add_settlement(naming, action, order, &queued.trace, now);
            }
        }
    }
    writes.add_stock_changes(naming, &before, &book, now);
    report.events = writes.outbox_ids.len();
    writes.execute(&mut tx, &before, &book, epoch).await?;
    tx.commit().await?;
    Ok(report)
}

/// Locks this partition's lease row, checks the epoch and records how far
/// the partition got, in one statement. A worker that lost its lease (its
/// replica stalled and another took over) fails here, before it can write
/// anything, and the newer worker's batches queue behind this lock rather
/// than interleave with a stale one: an update waiting for the row lock
/// checks the epoch again on the row as the other transaction left it.
async fn fence(
    tx: &mut Transaction<'_, Postgres>,
    partition: u16,
    epoch: i64,
    last_stream_seq: u64,
) -> Result<(), BatchError> {
    let held: Option<i64> = sqlx::query_scalar(
        "update partition_leases
         set last_stream_seq = greatest(last_stream_seq, $3), updated_at = now()
         where partition = $1 and epoch = $2
         returning epoch",
    )
    .bind(i32::from(partition))
    .bind(epoch)
    .bind(last_stream_seq as i64)
    .fetch_optional(&mut **tx)
    .await?;
    if held.is_none() {
        return Err(BatchError::LeaseLost);
    }
    Ok(())
}

/// The placements already decided by an earlier batch: a command redelivered
/// after a crash, or published twice by a client retry, changes nothing.
async fn decided(
    tx: &mut Transaction<'_, Postgres>,
    placements: &[&PlaceOrder],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let ids: Vec<Uuid> = placements.iter().map(|p| p.order_id).collect();
    Ok(
        sqlx::query_scalar("select id from orders where id = any($1) and status <> 'pending'")
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect(),
    )
}

/// The decided orders that cancellations and fulfilments in the batch name,
/// with their allocations and lines. Only this partition's worker changes an
/// order once it is decided, and it holds the lease row, so no lock is needed.
async fn load_known(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, KnownOrder>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let orders: Vec<(Uuid, Uuid, String)> =
        sqlx::query_as("select id, customer_id, status from orders where id = any($1)")
            .bind(ids)
            .fetch_all(&mut **tx)
            .await?;
    let mut known: HashMap<Uuid, KnownOrder> = orders
        .into_iter()
        .filter_map(|(id, customer_id, status)| {
            Some((
                id,
                KnownOrder {
                    customer_id,
                    status: OrderStatus::parse(&status).ok()?,
                    allocations: Vec::new(),
                    items: Vec::new(),
                },
            ))
        })
        .collect();
    let allocations: Vec<(Uuid, i64, i64, i64)> = sqlx::query_as(
        "select order_id, product_id, location_id, quantity from order_allocations
         where order_id = any($1) order by order_id, product_id, location_id",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    for (order_id, product_id, location_id, quantity) in allocations {
        if let Some(order) = known.get_mut(&order_id) {
            order.allocations.push(Allocation {
                product_id,
                location_id,
                quantity,
            });
        }
    }
    let lines: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "select order_id, sku, quantity from order_lines where order_id = any($1) order by order_id, line_no",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    for (order_id, sku, quantity) in lines {
        if let (Some(order), Ok(sku), Ok(quantity)) = (
            known.get_mut(&order_id),
            Sku::parse(&sku),
            Quantity::try_from(quantity),
        ) {
            order.items.push(OrderLine { sku, quantity });
        }
    }
    Ok(known)
}

/// Locks the products named by sku (`$1`) or id (`$2`) in id order.
///
/// The skus are resolved to ids first, in a sub-select the planner runs once
/// on the sku's unique btree, and the rows are then locked through the primary
/// key. Written as `where sku = any($1) or id = any($2)`, PostgreSQL chose a
/// bitmap scan of the trigram index on sku instead, which for skus sharing a
/// prefix reads most of the table: 33 ms for 3 skus among 5,640 products and
/// 1.2 s for 100, the processor's whole batch time. `tests/lock_plan.rs`
/// checks the plan.
pub const LOCK_PRODUCTS: &str =
    "select id, sku, archived_at is not null, low_stock_threshold from products
     where id = any(array(select id from products where sku = any($1)) || $2::bigint[])
     order by id
     for share";

/// Loads and locks every product named by sku or id (`for share`, in id
/// order) and then their stock rows (in (product_id, location_id) order).
/// Staff operations and product changes take the product row first too, so
/// nobody deadlocks with this, and a product archived or re-thresholded by a
/// transaction still in flight is read as it is once that commits, never as
/// it was.
pub async fn lock_stock(
    tx: &mut Transaction<'_, Postgres>,
    skus: &[String],
    product_ids: &[i64],
) -> Result<StockBook, sqlx::Error> {
    let products: Vec<(i64, String, bool, i64)> = sqlx::query_as(LOCK_PRODUCTS)
        .bind(skus)
        .bind(product_ids)
        .fetch_all(&mut **tx)
        .await?;
    let ids: Vec<i64> = products.iter().map(|p| p.0).collect();
    let levels: Vec<(i64, i64, i64, i64, bool)> = sqlx::query_as(
        "select s.product_id, s.location_id, s.on_hand, s.reserved, l.archived_at is null
         from stock_levels s join locations l on l.id = s.location_id
         where s.product_id = any($1)
         order by s.product_id, s.location_id
         for update of s",
    )
    .bind(&ids)
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

/// Everything a batch decided, written in one statement: the orders (a
/// pending row the ingress recorded is replaced, a decided one never), their
/// lines, the allocations with their `reserve` ledger rows (every reservation
/// is also a ledger row, so `stock_levels` stays the sum of the ledger), the
/// new stock levels and the outbox events. One statement rather than five
/// because a batch's fixed cost is mostly round trips and per-statement work
/// in PostgreSQL, and with many partitions sharing the load the batches are
/// small. Sibling statements of one `with` see the same snapshot and none of
/// each other's rows, which none of these needs; the foreign keys are checked
/// at the end of the statement, when every row is in.
const WRITE_DECISIONS: &str = "
    with placed as (
        insert into orders (id, customer_id, status, reason, idempotency_key, request_hash,
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
               decided_at = excluded.decided_at, updated_at = now()
           where orders.status = 'pending'
        returning 1),
    lined as (
        insert into order_lines (order_id, line_no, sku, quantity)
        select * from unnest($11::uuid[], $12::int4[], $13::text[], $14::int8[])
        on conflict do nothing
        returning 1),
    allocated as (
        insert into order_allocations (order_id, product_id, location_id, quantity)
        select * from unnest($15::uuid[], $16::int8[], $17::int8[], $18::int8[])
        returning order_id, product_id, location_id, quantity),
    reserved as (
        insert into stock_movements (product_id, location_id, kind, on_hand_delta,
                                     reserved_delta, order_id, correlation_id)
        select product_id, location_id, 'reserve', 0, quantity, order_id, order_id
        from allocated
        returning 1),
    levelled as (
        update stock_levels s set on_hand = v.on_hand, reserved = v.reserved, updated_at = now()
        from unnest($19::int8[], $20::int8[], $21::int8[], $22::int8[])
             as v(product_id, location_id, on_hand, reserved)
        where s.product_id = v.product_id and s.location_id = v.location_id
        returning 1),
    published as (
        insert into outbox (event_id, subject, payload, traceparent, request_id)
        select event_id, subject, payload::json, traceparent, request_id
        from unnest($23::uuid[], $24::text[], $25::text[], $26::text[], $27::text[])
             as e(event_id, subject, payload, traceparent, request_id)
        returning 1)
    select 1";

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

    settled_ids: Vec<Uuid>,
    settled_statuses: Vec<&'static str>,

    /// Ledger rows of cancellations (`release`) and fulfilments (`fulfil`).
    move_product_ids: Vec<i64>,
    move_location_ids: Vec<i64>,
    move_kinds: Vec<&'static str>,
    move_on_hand: Vec<i64>,
    move_reserved: Vec<i64>,
    move_order_ids: Vec<Uuid>,
    move_actors: Vec<Uuid>,

    outbox_ids: Vec<Uuid>,
    outbox_subjects: Vec<String>,
    /// JSON text, cast to json by the insert: building a `Value` tree per
    /// event only for sqlx to write it out again cost a tenth of the
    /// processor's time under load.
    outbox_payloads: Vec<String>,
    /// The `traceparent` each event carries on, if any.
    outbox_traceparents: Vec<Option<String>>,
    /// The request id each event carries on, if any.
    outbox_request_ids: Vec<Option<String>>,
}

impl Writes {
    fn add_event(
        &mut self,
        naming: &Naming,
        event: Event,
        occurred_at: DateTime<Utc>,
        trace: Option<&MessageTrace>,
    ) {
        let envelope = EventEnvelope::new(event, occurred_at);
        self.outbox_subjects
            .push(naming.event_subject(envelope.event.kind()));
        self.outbox_ids.push(envelope.event_id);
        self.outbox_payloads
            .push(serde_json::to_string(&envelope).expect("events serialize"));
        self.outbox_traceparents
            .push(trace.and_then(|t| t.context).map(|c| c.to_string()));
        self.outbox_request_ids.push(
            trace
                .and_then(|t| t.request_id.as_ref())
                .map(|r| r.as_str().to_owned()),
        );
    }

    fn add_placement(
        &mut self,
        naming: &Naming,
        partition: u16,
        queued: &QueuedCommand,
        command: &PlaceOrder,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) {
        let stream_seq = queued.stream_seq;
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
        self.stream_seqs.push(stream_seq as i64);
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
        self.add_event(naming, event, now, Some(&queued.trace));
    }

    /// A cancellation or fulfilment: the new status, one ledger row per
    /// allocation, and the event.
    fn add_settlement(
        &mut self,
        naming: &Naming,
        action: &OrderAction,
        order: &KnownOrder,
        trace: &MessageTrace,
        now: DateTime<Utc>,
    ) {
        let cancelled = order.status == OrderStatus::Cancelled;
        self.settled_ids.push(action.order_id);
        self.settled_statuses.push(order.status.as_str());
        for allocation in &order.allocations {
            self.move_product_ids.push(allocation.product_id);
            self.move_location_ids.push(allocation.location_id);
            self.move_order_ids.push(action.order_id);
            self.move_actors.push(action.requested_by);
            self.move_reserved.push(-allocation.quantity);
            if cancelled {
                self.move_kinds.push("release");
                self.move_on_hand.push(0);
            } else {
                self.move_kinds.push("fulfil");
                self.move_on_hand.push(-allocation.quantity);
            }
        }
        let settled = OrderSettled {
            order_id: action.order_id,
            customer_id: order.customer_id,
            items: order.items.clone(),
        };
        let event = if cancelled {
            Event::OrderCancelled(settled)
        } else {
            Event::OrderFulfilled(settled)
        };
        self.add_event(naming, event, now, Some(trace));
    }

    /// One `stock.changed` per product whose levels moved, and `stock.low`
    /// or `stock.recovered` when the batch as a whole took its available
    /// units across the threshold.
    fn add_stock_changes(
        &mut self,
        naming: &Naming,
        before: &StockBook,
        after: &StockBook,
        now: DateTime<Utc>,
    ) {
        let mut skus: Vec<&String> = after.products.keys().collect();
        skus.sort();
        for sku in skus {
            let (old, new) = (&before.products[sku], &after.products[sku]);
            if old.levels == new.levels {
                continue;
            }
            let on_hand: i64 = new.levels.iter().map(|l| l.on_hand).sum();
            let available = new.available();
            self.add_event(
                naming,
                Event::StockChanged(StockChanged {
                    sku: sku.clone(),
                    on_hand,
                    reserved: on_hand - available,
                    available,
                }),
                now,
                // A batch's stock change has many causes and no one trace.
                None,
            );
            if let Some(event) =
                threshold_crossing(sku, old.available(), available, new.low_stock_threshold)
            {
                self.add_event(naming, event, now, None);
            }
        }
    }

    async fn execute(
        self,
        tx: &mut Transaction<'_, Postgres>,
        before: &StockBook,
        after: &StockBook,
        epoch: i64,
    ) -> Result<(), sqlx::Error> {
        let (mut products, mut locations, mut on_hands, mut reserveds) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (sku, product) in &after.products {
            for (old, new) in before.products[sku].levels.iter().zip(&product.levels) {
                if old != new {
                    products.push(product.product_id);
                    locations.push(new.location_id);
                    on_hands.push(new.on_hand);
                    reserveds.push(new.reserved);
                }
            }
        }
        sqlx::query(WRITE_DECISIONS)
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
            .bind(&self.line_order_ids)
            .bind(&self.line_numbers)
            .bind(&self.line_skus)
            .bind(&self.line_quantities)
            .bind(&self.alloc_order_ids)
            .bind(&self.alloc_product_ids)
            .bind(&self.alloc_location_ids)
            .bind(&self.alloc_quantities)
            .bind(&products)
            .bind(&locations)
            .bind(&on_hands)
            .bind(&reserveds)
            .bind(&self.outbox_ids)
            .bind(&self.outbox_subjects)
            .bind(&self.outbox_payloads)
            .bind(&self.outbox_traceparents)
            .bind(&self.outbox_request_ids)
            .execute(&mut **tx)
            .await?;

        // Separate statements, after the placements: a batch may place an
        // order and cancel it, and a sibling in one statement would not see
        // the row it has to update.
        if !self.settled_ids.is_empty() {
            sqlx::query(
                "update orders o set status = v.status, updated_at = now()
                 from unnest($1::uuid[], $2::text[]) as v(id, status)
                 where o.id = v.id",
            )
            .bind(&self.settled_ids)
            .bind(&self.settled_statuses)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "insert into stock_movements (product_id, location_id, kind, on_hand_delta,
                                              reserved_delta, order_id, actor_id, correlation_id)
                 select m.product_id, m.location_id, m.kind, m.on_hand, m.reserved, m.order_id,
                        m.actor, m.order_id
                 from unnest($1::int8[], $2::int8[], $3::text[], $4::int8[], $5::int8[], $6::uuid[],
                             $7::uuid[])
                      as m(product_id, location_id, kind, on_hand, reserved, order_id, actor)",
            )
            .bind(&self.move_product_ids)
            .bind(&self.move_location_ids)
            .bind(&self.move_kinds)
            .bind(&self.move_on_hand)
            .bind(&self.move_reserved)
            .bind(&self.move_order_ids)
            .bind(&self.move_actors)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}
