//! The processor killed with SIGKILL in the middle of its work, restarted,
//! killed again: every order is still decided exactly once, in queue order.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::{assert_invariants, decided, product, Feed};
use testkit::{eventually, TestDatabase, TestNamespace};
use tokio::process::{Child, Command};

const SKUS: [&str; 4] = ["CRASH-A", "CRASH-B", "CRASH-C", "CRASH-D"];
const STOCK: i64 = 2_000;
const ORDERS: usize = 12_000;

fn spawn_processor(db: &TestDatabase, ns: &TestNamespace) -> Child {
    Command::new(env!("CARGO_BIN_EXE_order-processor"))
        .envs(testkit::env_vars(
            db,
            ns,
            &[("ORDERFLOW_PARTITIONS", "4"), ("ORDERFLOW_BATCH_MAX", "64")],
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the order-processor binary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_processor_mid_batch_and_restarting_it_decides_every_order_exactly_once() {
    testkit::init_logging();
    let db = TestDatabase::create().await.unwrap();
    let ns = TestNamespace::new();
    for sku in SKUS {
        product(&db.pool, sku, STOCK).await;
    }
    let feed = Feed::new(&db, &ns, 4).await;
    let skus: Vec<&str> = (0..ORDERS)
        .map(|i| SKUS[(i * 7 + i / 3) % SKUS.len()])
        .collect();
    let ids = feed.publish(&skus).await;

    // Two crashes, each after some batches committed and before the queue
    // was drained: the kill lands while work is in flight.
    let mut killed_at = Vec::new();
    for crash in 1..=2i64 {
        let mut processor = spawn_processor(&db, &ns);
        let before = decided(&db.pool).await;
        let at = eventually(Duration::from_secs(60), "some batches to commit", || {
            let pool = db.pool.clone();
            async move {
                let now = decided(&pool).await;
                (now >= before + 500 * crash).then_some(now)
            }
        })
        .await;
        processor.kill().await.unwrap();
        let after_kill = decided(&db.pool).await;
        killed_at.push((at, after_kill));
        assert!(
            after_kill < ORDERS as i64,
            "the processor finished before it could be killed; raise ORDERS"
        );
    }

    let mut processor = spawn_processor(&db, &ns);
    eventually(
        Duration::from_secs(120),
        "every order to be decided",
        || {
            let pool = db.pool.clone();
            async move { (decided(&pool).await == ORDERS as i64).then_some(()) }
        },
    )
    .await;
    assert_invariants(&db.pool, &ids, &SKUS, STOCK).await;

    // The outbox drains after the restarts, one outcome event per order.
    testkit::wait_for_empty_outbox(&db.pool).await;
    processor.kill().await.unwrap();
    use futures::TryStreamExt;
    let per_subject: Vec<(String, usize)> = feed
        .js
        .get_stream(ns.naming.events_stream())
        .await
        .unwrap()
        .info_with_subjects(ns.naming.event_subject("order.*"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let total: usize = per_subject.iter().map(|(_, n)| n).sum();
    assert_eq!(
        total, ORDERS,
        "one outcome event per order: {per_subject:?}; kills at {killed_at:?}"
    );
}
