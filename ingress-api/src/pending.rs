//! Records accepted orders as `pending` in the database, so `GET /orders`
//! lists them before they are decided.
//!
//! This runs off the request path: the order is already safe in JetStream
//! when it is answered 202, and the queue, not this table, is what the
//! processor decides from. Rows are written in batches; when the database is
//! down they are dropped (the pending order is still found by id through the
//! queue, and the decision writes the row).
//!
//! Each order is recorded only once it is [`GRACE`] old. By then the
//! processor has usually decided it and written its row, and the insert finds
//! the id taken and writes nothing. Writing the pending row at once doubled
//! the database's work per order under load: an insert here, then the
//! decision rewriting the same row and its index entries (the orders stay in
//! `GET /orders` either way; only the first second of a pending order is not
//! listed, and `GET /orders/{id}` finds it in the queue meanwhile).

use std::time::Duration;

use chrono::{DateTime, Utc};
use orderflow_core::command::PlaceOrder;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Most rows buffered before new ones are dropped.
const CAPACITY: usize = 20_000;
/// Most rows written per statement.
const BATCH: usize = 500;
/// How old an order must be before it is recorded as pending.
pub const GRACE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct PendingRecorder {
    sender: mpsc::Sender<(PlaceOrder, u16)>,
}

impl PendingRecorder {
    /// Starts the writer task; it drains what is buffered and stops after `shutdown`.
    pub fn start(pool: PgPool, shutdown: CancellationToken) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(CAPACITY);
        let task = tokio::spawn(write_batches(pool, receiver, shutdown));
        (Self { sender }, task)
    }

    pub fn record(&self, order: PlaceOrder, partition: u16) {
        if self.sender.try_send((order, partition)).is_err() {
            debug!("pending recorder is full; the order will appear when decided");
        }
    }
}

async fn write_batches(
    pool: PgPool,
    mut receiver: mpsc::Receiver<(PlaceOrder, u16)>,
    shutdown: CancellationToken,
) {
    let mut buffer = Vec::with_capacity(BATCH);
    loop {
        let received = tokio::select! {
            n = receiver.recv_many(&mut buffer, BATCH) => n,
            _ = shutdown.cancelled() => {
                receiver.close();
                receiver.recv_many(&mut buffer, CAPACITY).await
            }
        };
        if received == 0 {
            return;
        }
        if !shutdown.is_cancelled() {
            // The buffer is in acceptance order, so once its youngest order
            // is old enough, all are.
            let youngest = buffer.last().map(|(order, _)| order.accepted_at);
            if let Some(wait) = youngest.and_then(until_grace_passed) {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
        if let Err(err) = write(&pool, &buffer).await {
            warn!(%err, dropped = buffer.len(), "could not record pending orders");
            // Back off a little so a database outage does not become a busy loop.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        buffer.clear();
    }
}

/// How long until an order accepted at `accepted_at` is [`GRACE`] old; `None`
/// when it already is.
fn until_grace_passed(accepted_at: DateTime<Utc>) -> Option<Duration> {
    let age = (Utc::now() - accepted_at).to_std().unwrap_or_default();
    GRACE.checked_sub(age).filter(|wait| !wait.is_zero())
}

async fn write(pool: &PgPool, orders: &[(PlaceOrder, u16)]) -> Result<(), sqlx::Error> {
    let mut ids = Vec::new();
    let mut customers = Vec::new();
    let mut keys = Vec::new();
    let mut hashes = Vec::new();
    let mut partitions = Vec::new();
    let mut created = Vec::new();
    let mut line_ids = Vec::new();
    let mut line_numbers = Vec::new();
    let mut line_skus = Vec::new();
    let mut line_quantities = Vec::new();
    for (order, partition) in orders {
        ids.push(order.order_id);
        customers.push(order.customer_id);
        keys.push(order.idempotency_key.clone());
        hashes.push(hex::decode(&order.request_hash).unwrap_or_default());
        partitions.push(i32::from(*partition));
        created.push(order.accepted_at);
        for (index, line) in order.items.iter().enumerate() {
            line_ids.push(order.order_id);
            line_numbers.push(index as i32 + 1);
            line_skus.push(line.sku.as_str().to_owned());
            line_quantities.push(line.quantity.get());
        }
    }
    let mut tx = pool.begin().await?;
    // Pending rows are a convenience the decision overwrites, dropped anyway
    // when the database is down: not worth a flush to disk of their own.
    sqlx::query("set local synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into orders (id, customer_id, status, idempotency_key, request_hash, partition, created_at)
         select o.id, o.customer_id, 'pending', o.key, o.hash, o.partition, o.created_at
         from unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::int4[], $6::timestamptz[])
              as o(id, customer_id, key, hash, partition, created_at)
         on conflict (id) do nothing",
    )
    .bind(&ids)
    .bind(&customers)
    .bind(&keys)
    .bind(&hashes)
    .bind(&partitions)
    .bind(&created)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into order_lines (order_id, line_no, sku, quantity)
         select * from unnest($1::uuid[], $2::int4[], $3::text[], $4::int8[])
         on conflict do nothing",
    )
    .bind(&line_ids)
    .bind(&line_numbers)
    .bind(&line_skus)
    .bind(&line_quantities)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
