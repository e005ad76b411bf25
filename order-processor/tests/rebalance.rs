//! Processor replicas split the partitions fairly: a replica that joins takes
//! its share from the others, a replica that leaves (stopped or killed) hands
//! its partitions back, no partition is ever owned twice, and orders decided
//! through all of it are decided exactly once, in queue order.

mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use order_processor::lease::LEASE_LOCK_CLASS;
use order_processor::Processor;
use support::{assert_invariants, decided, product, Feed};
use testkit::{eventually, TestDatabase, TestNamespace};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

const PARTITIONS: u16 = 8;
/// Long enough for a handover on a busy machine; a claim round is 500 ms.
const HANDOVER_WITHIN: Duration = Duration::from_secs(30);

/// One replica as the test sees it.
enum Replica<'a> {
    /// Started in this process: its own list of running workers.
    InProcess(&'a Processor),
    /// The order-processor binary, started with `HOSTNAME=<host>`: the
    /// partition locks its lease connection holds.
    Binary { host: String },
}

impl Replica<'_> {
    async fn owned(&self, db: &TestDatabase) -> BTreeSet<u16> {
        match self {
            Replica::InProcess(processor) => processor.owned_partitions(),
            Replica::Binary { host } => {
                let partitions: Vec<i64> = sqlx::query_scalar(
                    "select l.objid::int8 from pg_locks l join pg_stat_activity a on a.pid = l.pid
                     where l.locktype = 'advisory' and l.granted and l.objsubid = 2
                       and l.database = (select oid from pg_database where datname = current_database())
                       and l.classid = ($1::int4)::oid and a.application_name like $2",
                )
                .bind(LEASE_LOCK_CLASS)
                .bind(format!("orderflow-lease {host}:%"))
                .fetch_all(&db.pool)
                .await
                .unwrap();
                partitions.into_iter().map(|p| p as u16).collect()
            }
        }
    }
}

/// What each replica owns, read twice in the same order. Panics when a
/// partition is owned by two replicas at once: seen with both in the first
/// reading and still with both in the second, each held it all the time in
/// between, and those times overlap.
async fn sample_ownership(db: &TestDatabase, replicas: &[Replica<'_>]) -> Vec<BTreeSet<u16>> {
    let mut first = Vec::with_capacity(replicas.len());
    for replica in replicas {
        first.push(replica.owned(db).await);
    }
    let mut second = Vec::with_capacity(replicas.len());
    for replica in replicas {
        second.push(replica.owned(db).await);
    }
    for i in 0..replicas.len() {
        for j in i + 1..replicas.len() {
            let held_by_i: BTreeSet<u16> = first[i].intersection(&second[i]).copied().collect();
            let held_by_j: BTreeSet<u16> = first[j].intersection(&second[j]).copied().collect();
            let both: Vec<_> = held_by_i.intersection(&held_by_j).collect();
            assert!(
                both.is_empty(),
                "replicas {i} and {j} both own partitions {both:?}"
            );
        }
    }
    second
}

/// Waits until the replicas own the partition counts in `expected` (in the
/// same order) and together every partition, checking at every sample that
/// no partition is owned twice.
async fn wait_for_split(
    db: &TestDatabase,
    replicas: &[Replica<'_>],
    expected: &[usize],
    what: &str,
) {
    eventually(HANDOVER_WITHIN, what, || async {
        let owned = sample_ownership(db, replicas).await;
        let counts: Vec<usize> = owned.iter().map(BTreeSet::len).collect();
        let all: BTreeSet<u16> = owned.into_iter().flatten().collect();
        (counts == expected && all.len() == usize::from(PARTITIONS)).then_some(())
    })
    .await;
}

fn spawn_binary(db: &TestDatabase, ns: &TestNamespace, host: &str, metrics_port: u16) -> Child {
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    Command::new(env!("CARGO_BIN_EXE_order-processor"))
        .envs(testkit::env_vars(
            db,
            ns,
            &[
                ("ORDERFLOW_PARTITIONS", "8"),
                ("ORDERFLOW_BATCH_MAX", "32"),
                ("ORDERFLOW_METRICS_ADDR", &metrics_addr),
                ("HOSTNAME", host),
            ],
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the order-processor binary")
}

/// A port nothing listens on right now, for a binary's metrics.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of `orderflow_processor_replicas` on a binary's `/metrics`.
async fn replicas_gauge(metrics_port: u16) -> Option<f64> {
    let body = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    body.lines()
        .find_map(|line| line.strip_prefix("orderflow_processor_replicas "))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_replica_takes_half_the_partitions_and_a_leaving_one_hands_them_back() {
    testkit::init_logging();
    let db = TestDatabase::create().await.unwrap();
    let ns = TestNamespace::new();
    let settings = testkit::settings(
        &db,
        &ns,
        &[("ORDERFLOW_PARTITIONS", "8"), ("ORDERFLOW_BATCH_MAX", "32")],
    );

    let token_a = CancellationToken::new();
    let a = Processor::start(settings.clone(), token_a.clone())
        .await
        .unwrap();
    wait_for_split(
        &db,
        &[Replica::InProcess(&a)],
        &[8],
        "replica A alone to own every partition",
    )
    .await;

    // B joins: A stops its four highest workers, B claims them.
    let token_b = CancellationToken::new();
    let b = Processor::start(settings.clone(), token_b.clone())
        .await
        .unwrap();
    wait_for_split(
        &db,
        &[Replica::InProcess(&a), Replica::InProcess(&b)],
        &[4, 4],
        "A and B to own four partitions each",
    )
    .await;
    assert_eq!(
        a.owned_partitions(),
        (0..4).collect(),
        "A keeps its lowest partitions"
    );

    // B stops: its workers finish, its session ends, A's share is all again.
    token_b.cancel();
    b.wait().await;
    wait_for_split(
        &db,
        &[Replica::InProcess(&a)],
        &[8],
        "A to own every partition again after B stopped",
    )
    .await;

    // C, a separate process, joins and is killed: it never says goodbye,
    // and A takes its partitions back once PostgreSQL ends its session.
    let metrics_port = free_port();
    let mut c = spawn_binary(&db, &ns, "rebalance-c", metrics_port);
    let c_view = Replica::Binary {
        host: "rebalance-c".into(),
    };
    wait_for_split(
        &db,
        &[Replica::InProcess(&a), c_view],
        &[4, 4],
        "A and the binary C to own four partitions each",
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "C to count two live replicas",
        || async { (replicas_gauge(metrics_port).await == Some(2.0)).then_some(()) },
    )
    .await;
    c.kill().await.unwrap();
    wait_for_split(
        &db,
        &[Replica::InProcess(&a)],
        &[8],
        "A to own every partition again after C was killed",
    )
    .await;

    token_a.cancel();
    a.wait().await;
}

const SKUS: [&str; 6] = ["BAL-A", "BAL-B", "BAL-C", "BAL-D", "BAL-E", "BAL-F"];
/// Less than the orders each sku gets, so some are rejected.
const STOCK: i64 = 150;
/// Orders published at the least, whatever the pace of the rebalancing.
const MIN_ORDERS: usize = 1_800;
/// Orders published and not yet decided at most, so the feed keeps pace with
/// the replicas instead of queueing more than the test can wait for.
const MAX_UNDECIDED: i64 = 400;

/// Publishes rounds of orders until `stop` is set and at least `MIN_ORDERS`
/// went out, waiting for decisions to keep up; returns the order ids.
async fn keep_ordering(
    feed: Arc<Feed>,
    pool: sqlx::PgPool,
    published: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Vec<uuid::Uuid> {
    let round: Vec<&str> = (0..30).map(|i| SKUS[i % SKUS.len()]).collect();
    let mut ids = Vec::new();
    while !(stop.load(Ordering::SeqCst) && ids.len() >= MIN_ORDERS) {
        ids.extend(feed.publish(&round).await);
        published.store(ids.len(), Ordering::SeqCst);
        let floor = ids.len() as i64 - MAX_UNDECIDED;
        eventually(Duration::from_secs(60), "decisions to keep up", || {
            let pool = pool.clone();
            async move { (decided(&pool).await >= floor).then_some(()) }
        })
        .await;
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_placed_while_replicas_join_and_leave_are_each_decided_once_without_overselling() {
    testkit::init_logging();
    let db = TestDatabase::create().await.unwrap();
    let ns = TestNamespace::new();
    for sku in SKUS {
        product(&db.pool, sku, STOCK).await;
    }
    let feed = Arc::new(Feed::new(&db, &ns, PARTITIONS).await);
    let settings = testkit::settings(
        &db,
        &ns,
        &[("ORDERFLOW_PARTITIONS", "8"), ("ORDERFLOW_BATCH_MAX", "32")],
    );

    let token_a = CancellationToken::new();
    let a = Processor::start(settings.clone(), token_a.clone())
        .await
        .unwrap();
    wait_for_split(
        &db,
        &[Replica::InProcess(&a)],
        &[8],
        "replica A alone to own every partition",
    )
    .await;

    let published = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let orders = tokio::spawn(keep_ordering(
        feed.clone(),
        db.pool.clone(),
        published.clone(),
        stop.clone(),
    ));
    let orders_flowing = |past: usize| {
        let published = published.clone();
        async move {
            eventually(Duration::from_secs(30), "orders to flow", || {
                let now = published.load(Ordering::SeqCst);
                async move { (now >= past + 150).then_some(()) }
            })
            .await
        }
    };
    orders_flowing(0).await;

    // B (in this process) and C (a separate process) join while orders flow.
    let token_b = CancellationToken::new();
    let b = Processor::start(settings.clone(), token_b.clone())
        .await
        .unwrap();
    let mut c = spawn_binary(&db, &ns, "rebalance-race-c", free_port());
    let c_view = || Replica::Binary {
        host: "rebalance-race-c".into(),
    };
    eventually(
        HANDOVER_WITHIN,
        "three replicas to split 3, 3, 2",
        || async {
            let owned = sample_ownership(
                &db,
                &[Replica::InProcess(&a), Replica::InProcess(&b), c_view()],
            )
            .await;
            let mut counts: Vec<usize> = owned.iter().map(BTreeSet::len).collect();
            counts.sort();
            let all: BTreeSet<u16> = owned.into_iter().flatten().collect();
            (counts == [2, 3, 3] && all.len() == 8).then_some(())
        },
    )
    .await;
    orders_flowing(published.load(Ordering::SeqCst)).await;

    // B stops with orders in flight: its batches in hand are finished and
    // acked before A and C take its partitions.
    token_b.cancel();
    b.wait().await;
    wait_for_split(
        &db,
        &[Replica::InProcess(&a), c_view()],
        &[4, 4],
        "A and C to own four partitions each after B stopped",
    )
    .await;
    orders_flowing(published.load(Ordering::SeqCst)).await;

    // C is killed mid-work: its unacked batches are redelivered to A.
    c.kill().await.unwrap();
    wait_for_split(
        &db,
        &[Replica::InProcess(&a)],
        &[8],
        "A to own every partition after C was killed",
    )
    .await;

    stop.store(true, Ordering::SeqCst);
    let ids = orders.await.unwrap();
    eventually(Duration::from_secs(60), "every order to be decided", || {
        let pool = db.pool.clone();
        let total = ids.len() as i64;
        async move { (decided(&pool).await == total).then_some(()) }
    })
    .await;
    assert_invariants(&db.pool, &ids, &SKUS, STOCK).await;
    let (confirmed, rejected): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where status = 'confirmed'),
                count(*) filter (where status = 'rejected') from orders",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(confirmed, STOCK * SKUS.len() as i64, "the stock sold out");
    assert!(rejected > 0, "some orders found no stock");

    // The five partitions A gave up when B and C joined were claimed under
    // new epochs; the fence in assert_invariants kept every former owner
    // from committing after that.
    let moved: i64 = sqlx::query_scalar("select count(*) from partition_leases where epoch >= 2")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(moved >= 5, "only {moved} partitions changed hands");

    token_a.cancel();
    a.wait().await;
}
