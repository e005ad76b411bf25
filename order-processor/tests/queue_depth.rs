//! Queue depth and the oldest pending order's age, measured on the real
//! ORDERS stream and its partition consumers.

mod support;

use std::time::Duration;

use order_processor::queue_depth::measure;
use order_processor::Processor;
use orderflow_core::domain::Sku;
use orderflow_core::partition::partition_for;
use support::{decided, product, Feed};
use testkit::{eventually, TestDatabase, TestNamespace};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_orders_show_as_depth_and_age_until_they_are_decided() {
    testkit::init_logging();
    let db = TestDatabase::create().await.unwrap();
    let ns = TestNamespace::new();
    product(&db.pool, "DEPTH-1", 10).await;
    let feed = Feed::new(&db, &ns, 4).await;
    let settings = testkit::settings(&db, &ns, &[("ORDERFLOW_PARTITIONS", "4")]);
    let partition = partition_for(&Sku::parse("DEPTH-1").unwrap(), 4);
    let orders = feed.js.get_stream(ns.naming.orders_stream()).await.unwrap();

    // A processor creates the partition consumers, then stops: orders queued
    // now wait.
    let token = CancellationToken::new();
    let processor = Processor::start(settings.clone(), token.clone())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "the partitions to be owned",
        || {
            let owned = processor.owned_partitions();
            async move { (owned.len() == 4).then_some(()) }
        },
    )
    .await;
    token.cancel();
    processor.wait().await;

    let ids = feed.publish(&["DEPTH-1", "DEPTH-1", "DEPTH-1"]).await;
    let waiting = eventually(
        Duration::from_secs(10),
        "the queued orders to be measured",
        || {
            let (orders, naming) = (orders.clone(), ns.naming.clone());
            async move {
                let m = measure(&orders, &naming, partition).await;
                (m.depth == Some(3) && m.oldest_age_seconds > 0.0).then_some(m)
            }
        },
    )
    .await;
    assert!(waiting.oldest_age_seconds < 60.0, "{waiting:?}");

    let token = CancellationToken::new();
    let processor = Processor::start(settings, token.clone()).await.unwrap();
    let expected = ids.len() as i64;
    eventually(Duration::from_secs(30), "the orders to be decided", || {
        let pool = db.pool.clone();
        async move { (decided(&pool).await == expected).then_some(()) }
    })
    .await;
    let drained = eventually(Duration::from_secs(10), "the queue to drain", || {
        let (orders, naming) = (orders.clone(), ns.naming.clone());
        async move {
            let m = measure(&orders, &naming, partition).await;
            (m.depth == Some(0)).then_some(m)
        }
    })
    .await;
    assert_eq!(drained.oldest_age_seconds, 0.0);
    token.cancel();
    processor.wait().await;
}
