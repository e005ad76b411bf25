//! The invariant checks against a real database: the baseline keeps every
//! one of them, and each kind of corruption is caught by the check meant for
//! it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use loadgen::args::{Limit, Loop, Shape, Workload};
use loadgen::baseline::BaselineServer;
use loadgen::demand::Demand;
use loadgen::driver::{self, Accepted, Driven, Load};
use loadgen::invariants::{all_hold, Check, RunOrders};
use loadgen::setup::Fixture;
use testkit::TestDatabase;
use uuid::Uuid;

fn workload(shape: Shape, products: u32, lines: u32, stock: i64) -> Workload {
    Workload {
        shape,
        products,
        zipf_s: 1.0,
        lines,
        quantity: 1,
        stock,
        customers: 4,
        seed: 42,
    }
}

/// Products with stock at `main`, written as a receipt would write them.
async fn seed(db: &TestDatabase, workload: &Workload) -> Fixture {
    let mut skus = Vec::new();
    let mut product_ids = Vec::new();
    for n in 0..workload.product_count() {
        let sku = format!("T-{n}");
        let id: i64 = sqlx::query_scalar(
            "insert into products (sku, name, price_cents) values ($1, $1, 100) returning id",
        )
        .bind(&sku)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        sqlx::query(
            "insert into stock_levels (product_id, location_id, on_hand)
             select $1, id, $2 from locations where code = 'main'",
        )
        .bind(id)
        .bind(workload.stock)
        .execute(&db.pool)
        .await
        .unwrap();
        sqlx::query(
            "insert into stock_movements (product_id, location_id, kind, on_hand_delta,
                                          reserved_delta, correlation_id)
             select $1, id, 'receive', $2, 0, $3 from locations where code = 'main'",
        )
        .bind(id)
        .bind(workload.stock)
        .bind(Uuid::new_v4())
        .execute(&db.pool)
        .await
        .unwrap();
        skus.push(sku);
        product_ids.push(id);
    }
    Fixture {
        skus,
        product_ids,
        stock_per_product: workload.stock,
    }
}

/// A token whose subject the baseline reads (it checks no signature).
fn token() -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.unsigned",
        engine.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        engine.encode(format!(
            r#"{{"sub":"{}","role":"customer"}}"#,
            Uuid::new_v4()
        ))
    )
}

/// Places `orders` orders with the baseline over 16 connections.
async fn drive_baseline(
    db: &TestDatabase,
    fixture: &Fixture,
    workload: &Workload,
    orders: u64,
) -> Driven {
    let server = BaselineServer::start(db.pool.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let load = Load {
        client: driver::client(Duration::from_secs(30)).unwrap(),
        url: server.orders_url(),
        tokens: Arc::new((0..workload.customers).map(|_| token()).collect()),
        skus: Arc::new(fixture.skus.clone()),
        demand: Arc::new(Demand::new(workload)),
    };
    let driven = driver::drive(
        load,
        Loop::Closed { connections: 16 },
        Limit::Orders(orders),
    )
    .await;
    server.stop().await.unwrap();
    driven
}

async fn checks(
    db: &TestDatabase,
    fixture: &Fixture,
    accepted: &[Accepted],
    started: f64,
) -> Vec<Check> {
    let mut run = RunOrders::load(&db.url, accepted, started).await.unwrap();
    let checks = run.check(fixture).await.unwrap();
    run.close().await;
    checks
}

fn failed(checks: &[Check]) -> Vec<&'static str> {
    checks.iter().filter(|c| !c.ok).map(|c| c.name).collect()
}

#[tokio::test]
async fn the_baseline_sells_exactly_the_stock_of_a_hot_product_and_keeps_every_invariant() {
    let db = TestDatabase::create().await.unwrap();
    let workload = workload(Shape::Hot, 1, 1, 50);
    let fixture = seed(&db, &workload).await;
    let driven = drive_baseline(&db, &fixture, &workload, 200).await;
    assert_eq!(driven.accepted.len(), 200, "failures: {:?}", driven.failed);

    let mut run = RunOrders::load(&db.url, &driven.accepted, driven.started_at_unix)
        .await
        .unwrap();
    assert_eq!(run.wait_for_decisions(Duration::ZERO).await.unwrap(), 0);
    let decisions = run.decisions().await.unwrap();
    assert_eq!(decisions.decided, 200);
    assert_eq!(decisions.confirmed, 50);
    assert_eq!(decisions.rejected.get("insufficient_stock"), Some(&150));
    assert_eq!(decisions.send_to_decided_at.count(), 200);
    let checks = run.check(&fixture).await.unwrap();
    assert!(all_hold(&checks), "{checks:#?}");
    run.close().await;
}

#[tokio::test]
async fn multi_product_baseline_orders_are_all_or_nothing_and_keep_every_invariant() {
    let db = TestDatabase::create().await.unwrap();
    let workload = workload(Shape::Zipf, 6, 3, 20);
    let fixture = seed(&db, &workload).await;
    let driven = drive_baseline(&db, &fixture, &workload, 300).await;
    assert_eq!(driven.accepted.len(), 300, "failures: {:?}", driven.failed);
    let checks = checks(&db, &fixture, &driven.accepted, driven.started_at_unix).await;
    assert!(all_hold(&checks), "{checks:#?}");
    // Demand outran the stock, so some orders were refused whole.
    let rejected: i64 = sqlx::query_scalar("select count(*) from orders where status = 'rejected'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(rejected > 0);
}

#[tokio::test]
async fn stock_changed_behind_the_ledgers_back_is_caught() {
    let db = TestDatabase::create().await.unwrap();
    let workload = workload(Shape::Hot, 1, 1, 50);
    let fixture = seed(&db, &workload).await;
    let driven = drive_baseline(&db, &fixture, &workload, 60).await;
    sqlx::query("update stock_levels set reserved = reserved - 1 where product_id = $1")
        .bind(fixture.product_ids[0])
        .execute(&db.pool)
        .await
        .unwrap();
    let checks = checks(&db, &fixture, &driven.accepted, driven.started_at_unix).await;
    assert_eq!(
        failed(&checks),
        ["ledger equals stock", "reserved equals confirmed units"]
    );
}

#[tokio::test]
async fn a_confirmed_order_beyond_the_stock_is_an_oversell() {
    let db = TestDatabase::create().await.unwrap();
    let workload = workload(Shape::Hot, 1, 1, 10);
    let fixture = seed(&db, &workload).await;
    let driven = drive_baseline(&db, &fixture, &workload, 10).await;
    // An eleventh unit confirmed without any stock to back it.
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into orders (id, customer_id, status, request_hash, partition, created_at, decided_at)
         values ($1, $2, 'confirmed', '\\x00', 0, now(), now())",
    )
    .bind(id)
    .bind(Uuid::new_v4())
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("insert into order_lines (order_id, line_no, sku, quantity) values ($1, 1, $2, 1)")
        .bind(id)
        .bind(&fixture.skus[0])
        .execute(&db.pool)
        .await
        .unwrap();
    let checks = checks(&db, &fixture, &driven.accepted, driven.started_at_unix).await;
    assert_eq!(
        failed(&checks),
        ["reserved equals confirmed units", "no oversell"]
    );
}

#[tokio::test]
async fn an_order_reserved_twice_is_caught() {
    let db = TestDatabase::create().await.unwrap();
    let workload = workload(Shape::Hot, 1, 1, 50);
    let fixture = seed(&db, &workload).await;
    let driven = drive_baseline(&db, &fixture, &workload, 20).await;
    // A second reservation of a confirmed order, ledger and level alike, as
    // a redelivery decided twice would write it.
    let (order_id, location_id): (Uuid, i64) =
        sqlx::query_as("select order_id, location_id from order_allocations limit 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    sqlx::query(
        "insert into stock_movements (product_id, location_id, kind, on_hand_delta,
                                      reserved_delta, order_id, correlation_id)
         values ($1, $2, 'reserve', 0, 1, $3, $3)",
    )
    .bind(fixture.product_ids[0])
    .bind(location_id)
    .bind(order_id)
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("update stock_levels set reserved = reserved + 1 where product_id = $1")
        .bind(fixture.product_ids[0])
        .execute(&db.pool)
        .await
        .unwrap();
    let checks = checks(&db, &fixture, &driven.accepted, driven.started_at_unix).await;
    assert_eq!(
        failed(&checks),
        [
            "decided once, all or nothing",
            "reserved equals confirmed units"
        ]
    );
}

#[tokio::test]
async fn an_accepted_order_never_decided_or_acknowledged_twice_is_caught() {
    let db = TestDatabase::create().await.unwrap();
    let workload = workload(Shape::Hot, 1, 1, 50);
    let fixture = seed(&db, &workload).await;
    let driven = drive_baseline(&db, &fixture, &workload, 20).await;
    let mut accepted = driven.accepted.clone();
    accepted.push(Accepted {
        order_id: Uuid::new_v4(),
        due: Duration::from_millis(1),
        answered: Duration::from_millis(2),
    });
    accepted.push(accepted[0]);

    let mut run = RunOrders::load(&db.url, &accepted, driven.started_at_unix)
        .await
        .unwrap();
    assert_eq!(
        run.wait_for_decisions(Duration::from_millis(300))
            .await
            .unwrap(),
        1,
        "the unknown order is still undecided when the wait gives up"
    );
    let checks = run.check(&fixture).await.unwrap();
    run.close().await;
    assert_eq!(
        failed(&checks),
        ["every accepted order decided", "one order per acceptance"]
    );
}
