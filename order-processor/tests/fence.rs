//! The lease fence of a batch: a worker whose epoch is no longer the
//! partition's writes nothing, including when its batch queues behind the
//! transaction that takes the partition over.

mod support;

use std::time::Duration;

use chrono::Utc;
use order_processor::batch::{decide_and_commit, BatchError, QueuedCommand};
use order_processor::lease::bump_epoch;
use orderflow_core::command::{OrderCommand, PlaceOrder};
use orderflow_core::domain::{request_hash, OrderLine, Quantity, Sku};
use orderflow_core::naming::Naming;
use orderflow_core::trace_context::MessageTrace;
use sqlx::PgPool;
use support::{decided, product};
use testkit::{eventually, TestDatabase};
use uuid::Uuid;

const SKU: &str = "FENCE-A";
const PARTITION: u16 = 0;

fn placement(stream_seq: u64) -> QueuedCommand {
    let items = vec![OrderLine {
        sku: Sku::parse(SKU).unwrap(),
        quantity: Quantity::try_from(1).unwrap(),
    }];
    QueuedCommand {
        stream_seq,
        command: OrderCommand::PlaceOrder(PlaceOrder {
            order_id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            request_hash: hex::encode(request_hash(&items)),
            items,
            idempotency_key: None,
            accepted_at: Utc::now(),
        }),
        trace: MessageTrace::default(),
    }
}

async fn last_stream_seq(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select last_stream_seq from partition_leases where partition = $1")
        .bind(i32::from(PARTITION))
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn outbox_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from outbox")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_epoch_writes_nothing_and_the_current_one_commits() {
    testkit::init_logging();
    let db = TestDatabase::create().await.expect("test database");
    let naming = Naming::new("").unwrap();
    product(&db.pool, SKU, 10).await;
    let stale = bump_epoch(&db.pool, PARTITION, "old").await.unwrap();
    let current = bump_epoch(&db.pool, PARTITION, "new").await.unwrap();

    let refused = decide_and_commit(&db.pool, &naming, PARTITION, stale, &[placement(7)]).await;
    assert!(matches!(refused, Err(BatchError::LeaseLost)), "{refused:?}");
    assert_eq!(decided(&db.pool).await, 0, "no order written");
    assert_eq!(outbox_rows(&db.pool).await, 0, "no event written");
    assert_eq!(last_stream_seq(&db.pool).await, 0, "no progress marked");

    let report = decide_and_commit(&db.pool, &naming, PARTITION, current, &[placement(8)])
        .await
        .expect("the current epoch commits");
    assert_eq!(report.decided.len(), 1);
    assert_eq!(decided(&db.pool).await, 1);
    assert_eq!(last_stream_seq(&db.pool).await, 8, "progress marked");
}

/// The takeover bumps the epoch while the old worker's batch waits for the
/// lease row: once the takeover commits, the waiting batch must see the new
/// epoch on the row and refuse, not commit on the epoch it read before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_queued_behind_a_takeover_is_refused_once_it_commits() {
    testkit::init_logging();
    let db = TestDatabase::create().await.expect("test database");
    let naming = Naming::new("").unwrap();
    product(&db.pool, SKU, 10).await;
    let epoch = bump_epoch(&db.pool, PARTITION, "old").await.unwrap();

    let mut takeover = db.pool.begin().await.unwrap();
    sqlx::query(
        "update partition_leases set epoch = epoch + 1, holder = 'new' where partition = $1",
    )
    .bind(i32::from(PARTITION))
    .execute(&mut *takeover)
    .await
    .unwrap();

    let pool = db.pool.clone();
    let worker = tokio::spawn(async move {
        decide_and_commit(&pool, &naming, PARTITION, epoch, &[placement(5)]).await
    });
    // The old worker's statement is waiting for the row lock.
    eventually(
        Duration::from_secs(10),
        "the batch to wait for the lease row",
        || {
            let pool = db.pool.clone();
            async move {
                let waiting: i64 = sqlx::query_scalar(
                    "select count(*) from pg_stat_activity
                 where datname = current_database() and wait_event_type = 'Lock'
                   and query like '%partition_leases%'",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                (waiting == 1).then_some(())
            }
        },
    )
    .await;
    takeover.commit().await.unwrap();

    let refused = tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the batch stops waiting once the takeover commits")
        .unwrap();
    assert!(matches!(refused, Err(BatchError::LeaseLost)), "{refused:?}");
    assert_eq!(decided(&db.pool).await, 0, "no order written");
    assert_eq!(outbox_rows(&db.pool).await, 0, "no event written");
    assert_eq!(last_stream_seq(&db.pool).await, 0, "no progress marked");
}
