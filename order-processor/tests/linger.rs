//! The batch linger: a worker that found several orders waiting waits up to
//! `batch_linger` for more and decides them all in one transaction; a lone
//! order is decided at once; with no linger nothing waits for company.
//!
//! Orders decided in one transaction share `orders.decided_at` (PostgreSQL's
//! `now()`, the transaction's start), and the partition's consumer counts
//! the messages a worker holds undecided as `num_ack_pending`.
//!
//! `ORDERFLOW_BATCH_LINGER_MS` is capped at 100 ms, too short to act in
//! between two steps of a test on a busy machine, so the tests that need a
//! long linger set it on the settings the helpers build.

mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use order_processor::Processor;
use orderflow_core::settings::Settings;
use support::{decided, product, Feed};
use testkit::{eventually, TestDatabase, TestNamespace};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SKU: &str = "LINGER-A";

/// Settings for one partition, `overrides` last.
fn one_partition(db: &TestDatabase, ns: &TestNamespace, overrides: &[(&str, &str)]) -> Settings {
    let mut vars = vec![("ORDERFLOW_PARTITIONS", "1")];
    vars.extend_from_slice(overrides);
    testkit::settings(db, ns, &vars)
}

/// One partition with a linger longer than `ORDERFLOW_BATCH_LINGER_MS` allows.
fn long_linger(db: &TestDatabase, ns: &TestNamespace, linger: Duration) -> Settings {
    let mut settings = one_partition(db, ns, &[]);
    settings.batch_linger = linger;
    settings
}

/// Waits until every order of `ids` (in publishing order) is decided, checks
/// they were decided in that order, and answers their decisions.
async fn all_decided_in_queue_order(
    db: &TestDatabase,
    ids: &[Uuid],
) -> Vec<(Uuid, i64, DateTime<Utc>)> {
    let want = ids.len() as i64;
    eventually(Duration::from_secs(10), "every order decided", || {
        let pool = db.pool.clone();
        async move { (decided(&pool).await == want).then_some(()) }
    })
    .await;
    let rows = decisions(db, ids).await;
    let in_queue_order: Vec<Uuid> = rows.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(in_queue_order, ids, "decided in queue order");
    rows
}

async fn start(settings: Settings) -> (Processor, CancellationToken) {
    let token = CancellationToken::new();
    let processor = Processor::start(settings, token.clone()).await.unwrap();
    (processor, token)
}

async fn stop(processor: Processor, token: CancellationToken) {
    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), processor.wait())
        .await
        .expect("the processor stops");
}

/// Each decided order among `ids` with its stream sequence and decision
/// time, in queue order.
async fn decisions(db: &TestDatabase, ids: &[Uuid]) -> Vec<(Uuid, i64, DateTime<Utc>)> {
    sqlx::query_as(
        "select id, stream_seq, decided_at from orders
         where id = any($1) and status <> 'pending' order by stream_seq",
    )
    .bind(ids)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

/// Delivered-but-unacked messages on partition 0's consumer, once it exists.
async fn ack_pending(feed: &Feed, ns: &TestNamespace) -> Option<usize> {
    let stream = feed.js.get_stream(ns.naming.orders_stream()).await.ok()?;
    let info = stream
        .consumer_info(ns.naming.partition_consumer(0))
        .await
        .ok()?;
    Some(info.num_ack_pending)
}

/// A test's own database with `SKU` in stock, its namespace, and a feed
/// onto one partition.
struct Setup {
    db: TestDatabase,
    ns: TestNamespace,
    feed: Feed,
}

async fn setup() -> Setup {
    testkit::init_logging();
    let db = TestDatabase::create().await.unwrap();
    let ns = TestNamespace::new();
    product(&db.pool, SKU, 10).await;
    let feed = Feed::new(&db, &ns, 1).await;
    Setup { db, ns, feed }
}

/// What the worker did with the two orders queued before it started.
#[derive(Debug, PartialEq)]
enum FirstTwo {
    /// It holds both, undecided.
    Held,
    /// It decided some of them already.
    Decided,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_holding_several_orders_waits_for_a_third_and_decides_all_three_in_one_transaction(
) {
    let Setup { db, ns, feed } = setup().await;

    // Both are queued before the worker pulls, so its first batch holds two.
    let mut ids = feed.publish(&[SKU, SKU]).await;
    let (processor, token) = start(long_linger(&db, &ns, Duration::from_millis(3_000))).await;

    // "Decided" ends the wait too: without the linger the worker commits the
    // two at once, and the test must fail below rather than time out here.
    let first_two = eventually(
        Duration::from_secs(10),
        "the worker to hold the first two orders",
        || {
            let (feed, ns, pool) = (&feed, &ns, db.pool.clone());
            async move {
                if decided(&pool).await > 0 {
                    return Some(FirstTwo::Decided);
                }
                let held = ack_pending(feed, ns).await? == 2;
                // Not decided while it was counted as held.
                (held && decided(&pool).await == 0).then_some(FirstTwo::Held)
            }
        },
    )
    .await;

    ids.extend(feed.publish(&[SKU]).await);
    let rows = all_decided_in_queue_order(&db, &ids).await;
    let seqs: Vec<i64> = rows.iter().map(|(_, seq, _)| *seq).collect();
    assert!(
        seqs.windows(2).all(|pair| pair[0] < pair[1]),
        "stream sequences {seqs:?} rise in publishing order"
    );
    assert_eq!(
        first_two,
        FirstTwo::Held,
        "the worker held the first two orders undecided"
    );
    let times: Vec<DateTime<Utc>> = rows.iter().map(|(_, _, at)| *at).collect();
    assert!(
        times.iter().all(|at| *at == times[0]),
        "the two held orders and the third decided in one transaction: {times:?}"
    );
    let confirmed: i64 =
        sqlx::query_scalar("select count(*) from orders where status = 'confirmed'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(confirmed, 3, "stock covered all three");

    stop(processor, token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_order_is_decided_at_once_however_long_the_linger() {
    let Setup { db, ns, feed } = setup().await;
    let linger = Duration::from_millis(5_000);
    let (processor, token) = start(long_linger(&db, &ns, linger)).await;

    // The worker is pulling before the order arrives, so its batch is the
    // one order alone.
    eventually(
        Duration::from_secs(20),
        "the processor to own the partition and its consumer to exist",
        || {
            let owned = processor.owned_partitions();
            let (feed, ns) = (&feed, &ns);
            async move {
                (owned.contains(&0) && ack_pending(feed, ns).await.is_some()).then_some(())
            }
        },
    )
    .await;

    let published = Instant::now();
    let ids = feed.publish(&[SKU]).await;
    // Half the linger: a worker that lingered over it could not be this quick.
    let within = linger / 2;
    eventually(within, "the lone order decided at once", || {
        let pool = db.pool.clone();
        async move { (decided(&pool).await == 1).then_some(()) }
    })
    .await;
    let took = published.elapsed();
    assert!(
        took < within,
        "decided {took:?} after publishing, the linger is {linger:?}"
    );
    assert_eq!(decisions(&db, &ids).await.len(), 1);

    stop(processor, token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_linger_a_batch_is_decided_without_waiting_for_more() {
    let Setup { db, ns, feed } = setup().await;

    let mut ids = feed.publish(&[SKU, SKU]).await;
    let settings = one_partition(&db, &ns, &[("ORDERFLOW_BATCH_LINGER_MS", "0")]);
    assert_eq!(settings.batch_linger, Duration::ZERO);
    let (processor, token) = start(settings).await;
    eventually(
        Duration::from_secs(10),
        "the first two decided with no third in sight",
        || {
            let pool = db.pool.clone();
            async move { (decided(&pool).await == 2).then_some(()) }
        },
    )
    .await;

    ids.extend(feed.publish(&[SKU]).await);
    let rows = all_decided_in_queue_order(&db, &ids).await;
    let third = rows[2].2;
    assert!(
        rows[..2].iter().all(|(_, _, at)| *at != third),
        "the third was decided in a transaction of its own: {rows:?}"
    );

    stop(processor, token).await;
}
