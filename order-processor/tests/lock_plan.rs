//! The batch's product lock must find products through the sku's btree and
//! the primary key, never the trigram index: with skus that share a prefix
//! (as every sku of one catalogue or one load run does), a trigram bitmap scan
//! reads most of the table and made the lock the whole cost of a batch.

use order_processor::batch::LOCK_PRODUCTS;
use sqlx::PgPool;
use testkit::TestDatabase;

/// As many products as when the trigram index was chosen under load: with the
/// trigram index back on `sku` (migration 8 reverted), the plan at this size
/// uses it and the test fails.
const PRODUCTS: i64 = 2_000;
/// A catalogue large enough that reading all of it is never the cheap way.
const MORE_PRODUCTS: i64 = 20_000;

/// Adds products `from..=to` with skus sharing one prefix, then vacuums and
/// analyzes as autovacuum would (which also moves new entries of any GIN
/// index from its pending list into the index proper).
async fn add_products(pool: &PgPool, from: i64, to: i64) {
    sqlx::query(
        "insert into products (sku, name, price_cents)
         select 'LG-20261121T140000-' || i, 'Load product ' || i, 100
         from generate_series($1, $2) as i",
    )
    .bind(from)
    .bind(to)
    .execute(pool)
    .await
    .expect("insert the products");
    sqlx::query("vacuum analyze products")
        .execute(pool)
        .await
        .expect("vacuum analyze");
}

/// The plan of the lock, run with its real parameters in a transaction.
async fn plan(pool: &PgPool, skus: &[String], ids: &[i64]) -> String {
    let mut tx = pool.begin().await.expect("begin");
    let plan: Vec<String> =
        sqlx::query_scalar(&format!("explain (analyze, costs off) {LOCK_PRODUCTS}"))
            .bind(skus)
            .bind(ids)
            .fetch_all(&mut *tx)
            .await
            .expect("explain the lock");
    tx.rollback().await.expect("rollback");
    plan.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_a_batch_of_prefixed_skus_uses_the_btree_and_the_primary_key() {
    testkit::init_logging();
    let db = TestDatabase::create().await.expect("test database");
    add_products(&db.pool, 1, PRODUCTS).await;

    // A batch of 50 skus spread over the catalogue, plus two products named
    // by id (a cancellation's allocations), one of them also named by sku.
    let skus: Vec<String> = (1..=50)
        .map(|i| format!("LG-20261121T140000-{}", i * 37))
        .collect();
    let by_sku: Vec<i64> = sqlx::query_scalar("select id from products where sku = any($1)")
        .bind(&skus)
        .fetch_all(&db.pool)
        .await
        .expect("ids of the skus");
    assert_eq!(by_sku.len(), 50);
    let extra: i64 =
        sqlx::query_scalar("select id from products where sku = 'LG-20261121T140000-3'")
            .fetch_one(&db.pool)
            .await
            .expect("an id outside the skus");
    let ids = vec![extra, by_sku[0]];

    // A small catalogue may be read whole (a seq scan of 2,000 rows is
    // cheap), but never through the trigram index.
    let small = plan(&db.pool, &skus, &ids).await;
    assert!(
        !small.contains("trgm"),
        "the lock uses the trigram index:\n{small}"
    );
    assert!(
        small.contains("products_pkey"),
        "the rows are not locked through the primary key:\n{small}"
    );

    // A large one is read only where the batch names it.
    add_products(&db.pool, PRODUCTS + 1, MORE_PRODUCTS).await;
    let large = plan(&db.pool, &skus, &ids).await;
    assert!(
        large.contains("products_sku_key"),
        "the skus are not resolved through their btree:\n{large}"
    );
    assert!(
        large.contains("products_pkey"),
        "the rows are not locked through the primary key:\n{large}"
    );
    assert!(
        !large.contains("trgm") && !large.contains("Seq Scan on products"),
        "the lock reads more of the table than it names:\n{large}"
    );

    let mut tx = db.pool.begin().await.expect("begin");
    let locked: Vec<(i64, String, bool, i64)> = sqlx::query_as(LOCK_PRODUCTS)
        .bind(&skus)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .expect("lock the products");
    tx.rollback().await.expect("rollback");
    let mut expected: Vec<i64> = by_sku.clone();
    expected.push(extra);
    expected.sort_unstable();
    let locked_ids: Vec<i64> = locked.iter().map(|row| row.0).collect();
    assert_eq!(
        locked_ids, expected,
        "each product named once, in id order, whether named by sku, id or both"
    );
}
