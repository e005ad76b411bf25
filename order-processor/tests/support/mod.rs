//! Feeding the processor directly: customers and stock written with SQL (with
//! their ledger rows), order commands published to the ORDERS stream the way
//! ingress-api publishes them.

#![allow(dead_code)]

use std::future::IntoFuture;

use async_nats::jetstream::{self, context::Publish};
use chrono::Utc;
use orderflow_core::broker::{self, StreamLimits};
use orderflow_core::command::{OrderCommand, PlaceOrder};
use orderflow_core::domain::{request_hash, OrderLine, Sku};
use orderflow_core::partition::partition_for;
use sqlx::PgPool;
use testkit::{TestDatabase, TestNamespace};
use uuid::Uuid;

pub struct Feed {
    pub js: jetstream::Context,
    pub customer: Uuid,
    pub partitions: u16,
    ns_naming: orderflow_core::naming::Naming,
}

impl Feed {
    pub async fn new(db: &TestDatabase, ns: &TestNamespace, partitions: u16) -> Self {
        let client = async_nats::connect(testkit::nats_url()).await.unwrap();
        let js = jetstream::new(client);
        broker::provision(
            &js,
            &ns.naming,
            &StreamLimits {
                orders_max_msgs: 1_000_000,
                orders_max_bytes: 1 << 30,
                events_max_bytes: 1 << 30,
                replicas: 1,
            },
        )
        .await
        .unwrap();
        let customer = Uuid::now_v7();
        sqlx::query(
            "insert into users (id, email, password_hash, role) values ($1, $2, 'x', 'customer')",
        )
        .bind(customer)
        .bind(format!("{customer}@example.com"))
        .execute(&db.pool)
        .await
        .unwrap();
        Self {
            js,
            customer,
            partitions,
            ns_naming: ns.naming.clone(),
        }
    }

    /// Publishes single-line orders, one per sku given, all in flight at once,
    /// and returns their ids in queue order per partition.
    pub async fn publish(&self, skus: &[&str]) -> Vec<Uuid> {
        let mut acks = Vec::with_capacity(skus.len());
        let mut ids = Vec::with_capacity(skus.len());
        for sku in skus {
            let items = vec![OrderLine {
                sku: Sku::parse(sku).unwrap(),
                quantity: 1.try_into().unwrap(),
            }];
            let order = PlaceOrder {
                order_id: Uuid::now_v7(),
                customer_id: self.customer,
                request_hash: hex::encode(request_hash(&items)),
                items,
                idempotency_key: None,
                accepted_at: Utc::now(),
            };
            let partition = partition_for(&order.items[0].sku, self.partitions);
            let payload = serde_json::to_vec(&OrderCommand::PlaceOrder(order.clone())).unwrap();
            let ack = self
                .js
                .send_publish(
                    self.ns_naming.order_subject(partition, order.order_id),
                    Publish::build()
                        .message_id(order.order_id.to_string())
                        .payload(payload.into()),
                )
                .await
                .unwrap();
            acks.push(ack.into_future());
            ids.push(order.order_id);
        }
        for ack in futures::future::join_all(acks).await {
            ack.unwrap();
        }
        ids
    }
}

/// Creates a product with `stock` units at `main`, ledger row included.
pub async fn product(pool: &PgPool, sku: &str, stock: i64) {
    let id: i64 = sqlx::query_scalar(
        "insert into products (sku, name, price_cents) values ($1, $1, 100) returning id",
    )
    .bind(sku)
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query(
        "with level as (
            insert into stock_levels (product_id, location_id, on_hand)
            select $1, id, $2 from locations where code = 'main' returning location_id)
         insert into stock_movements (product_id, location_id, kind, on_hand_delta, reserved_delta, correlation_id)
         select $1, location_id, 'receive', $2, 0, gen_random_uuid() from level",
    )
    .bind(id)
    .bind(stock)
    .execute(pool)
    .await
    .unwrap();
}

pub async fn decided(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from orders where status <> 'pending'")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Checks every invariant the pipeline promises over what is in the database
/// once `expected` orders have been placed against `stock_per_sku` units each
/// of `skus`, every order wanting one unit.
pub async fn assert_invariants(
    pool: &PgPool,
    expected: &[Uuid],
    skus: &[&str],
    stock_per_sku: i64,
) {
    // Decided exactly once: one row each, none pending, nothing unknown.
    let ids: Vec<Uuid> = sqlx::query_scalar("select id from orders where status <> 'pending'")
        .fetch_all(pool)
        .await
        .unwrap();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    let mut sorted_expected = expected.to_vec();
    sorted_expected.sort();
    assert_eq!(sorted_ids, sorted_expected, "every order decided, once");

    // One reservation per confirmed order, never two.
    let doubled: i64 = sqlx::query_scalar(
        "select count(*) from (select order_id from stock_movements where kind = 'reserve'
                               group by order_id having count(*) > 1) d",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(doubled, 0, "no reservation applied twice");

    for sku in skus {
        let (confirmed, demand): (i64, i64) = sqlx::query_as(
            "select count(*) filter (where o.status = 'confirmed'), count(*)
             from orders o join order_lines l on l.order_id = o.id where l.sku = $1",
        )
        .bind(sku)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            confirmed,
            stock_per_sku.min(demand),
            "{sku}: confirmed up to the stock"
        );
        let (on_hand, reserved): (i64, i64) = sqlx::query_as(
            "select s.on_hand, s.reserved from stock_levels s join products p on p.id = s.product_id
             where p.sku = $1",
        )
        .bind(sku)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            (on_hand, reserved),
            (stock_per_sku, confirmed),
            "{sku}: stock"
        );

        // First come, first served: every confirmed order for the sku sat
        // earlier in the queue than every rejected one.
        let (last_confirmed, first_rejected): (Option<i64>, Option<i64>) = sqlx::query_as(
            "select max(o.stream_seq) filter (where o.status = 'confirmed'),
                    min(o.stream_seq) filter (where o.status = 'rejected')
             from orders o join order_lines l on l.order_id = o.id where l.sku = $1",
        )
        .bind(sku)
        .fetch_one(pool)
        .await
        .unwrap();
        if let (Some(last), Some(first)) = (last_confirmed, first_rejected) {
            assert!(
                last < first,
                "{sku}: decided in queue order ({last} >= {first})"
            );
        }
    }

    // Fencing: within a partition, in queue order, the deciding epoch never
    // goes back. A worker that lost its lease committed nothing afterwards.
    let stale: i64 = sqlx::query_scalar(
        "select count(*) from (
            select decided_epoch < max(decided_epoch) over (
                       partition by partition order by stream_seq
                       rows between unbounded preceding and 1 preceding) as stale
            from orders) o
         where stale",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(stale, 0, "no order decided under a stale lease epoch");

    let drift = testkit::ledger_drift(pool).await;
    assert_eq!(drift, 0, "the ledger sums equal the stock levels");
}
