//! SIGTERM while batches are in flight: the processor finishes the batches in
//! hand, publishes their events and exits 0 within bounds, leaving nothing
//! committed unacked; a restarted processor decides the rest, each order once.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::{assert_invariants, decided, product, Feed};
use testkit::{eventually, TestDatabase, TestNamespace};
use tokio::process::{Child, Command};

const SKUS: [&str; 4] = ["STOP-A", "STOP-B", "STOP-C", "STOP-D"];
const STOCK: i64 = 2_000;
const ORDERS: usize = 12_000;
/// How long the processor may take to exit after SIGTERM.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

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

/// Outcome events (`order.confirmed`, `order.rejected`) on the EVENTS stream.
async fn outcome_events(feed: &Feed, ns: &TestNamespace) -> usize {
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
    per_subject.iter().map(|(_, n)| n).sum()
}

async fn queued(feed: &Feed, ns: &TestNamespace) -> u64 {
    feed.js
        .get_stream(ns.naming.orders_stream())
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap()
        .state
        .messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_backlog_exits_zero_in_bounds_with_every_commit_acked_and_published() {
    testkit::init_logging();
    let db = TestDatabase::create().await.unwrap();
    let ns = TestNamespace::new();
    for sku in SKUS {
        product(&db.pool, sku, STOCK).await;
    }
    let feed = Feed::new(&db, &ns, 4).await;
    let skus: Vec<&str> = (0..ORDERS).map(|i| SKUS[i % SKUS.len()]).collect();
    let ids = feed.publish(&skus).await;

    let mut processor = spawn_processor(&db, &ns);
    eventually(Duration::from_secs(60), "some batches to commit", || {
        let pool = db.pool.clone();
        async move { (decided(&pool).await >= 1_000).then_some(()) }
    })
    .await;
    let pid = Pid::from_raw(processor.id().expect("running") as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    let signalled = Instant::now();
    let status = tokio::time::timeout(EXIT_WITHIN, processor.wait())
        .await
        .expect("the processor exits within bounds of SIGTERM")
        .unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");

    let at_exit = decided(&db.pool).await;
    assert!(
        at_exit < ORDERS as i64,
        "the backlog was drained before SIGTERM; raise ORDERS"
    );
    // Every event of every committed batch was published before the exit.
    let outbox: i64 = sqlx::query_scalar("select count(*) from outbox")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(outbox, 0, "the outbox is empty at exit");
    assert_eq!(
        outcome_events(&feed, &ns).await,
        at_exit as usize,
        "one outcome event per order decided before the exit"
    );
    // Every committed command was acked: the work queue holds exactly the
    // undecided ones (the server may still be reading the last acks the
    // processor flushed as it exited).
    let left = ORDERS as u64 - at_exit as u64;
    eventually(
        Duration::from_secs(5),
        "the acks of every committed command",
        || async { (queued(&feed, &ns).await == left).then_some(()) },
    )
    .await;
    tracing::info!(?took, at_exit, "the processor exited after SIGTERM");

    let mut restarted = spawn_processor(&db, &ns);
    eventually(
        Duration::from_secs(120),
        "the restarted processor to decide the rest",
        || {
            let pool = db.pool.clone();
            async move { (decided(&pool).await == ORDERS as i64).then_some(()) }
        },
    )
    .await;
    assert_invariants(&db.pool, &ids, &SKUS, STOCK).await;
    testkit::wait_for_empty_outbox(&db.pool).await;
    assert_eq!(outcome_events(&feed, &ns).await, ORDERS);
    let pid = Pid::from_raw(restarted.id().expect("running") as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(EXIT_WITHIN, restarted.wait())
        .await
        .expect("the idle processor exits within bounds of SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}
