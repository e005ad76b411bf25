//! The batch's product lock must find products through the sku's btree and
//! the primary key, never the trigram index: with skus that share a prefix
//! (as every sku of one catalogue or one load run does), a trigram bitmap scan
//! reads most of the table and made the lock the whole cost of a batch.

use order_processor::batch::LOCK_PRODUCTS;
use testkit::TestDatabase;

const PRODUCTS: i64 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locking_a_batch_of_prefixed_skus_uses_the_btree_and_the_primary_key() {
    testkit::init_logging();
    let db = TestDatabase::create().await.expect("test database");
    sqlx::query(
        "insert into products (sku, name, price_cents)
         select 'LG-20261121T140000-' || i, 'Load product ' || i, 100
         from generate_series(1, $1) as i",
    )
    .bind(PRODUCTS)
    .execute(&db.pool)
    .await
    .expect("insert the products");
    sqlx::query("analyze products")
        .execute(&db.pool)
        .await
        .expect("analyze");

    // A batch of 100 skus spread over the catalogue, plus two products named
    // by id (a cancellation's allocations), one of them also named by sku.
    let skus: Vec<String> = (1..=100)
        .map(|i| format!("LG-20261121T140000-{}", i * 197))
        .collect();
    let by_sku: Vec<i64> = sqlx::query_scalar("select id from products where sku = any($1)")
        .bind(&skus)
        .fetch_all(&db.pool)
        .await
        .expect("ids of the skus");
    assert_eq!(by_sku.len(), 100);
    let extra: i64 =
        sqlx::query_scalar("select id from products where sku = 'LG-20261121T140000-3'")
            .fetch_one(&db.pool)
            .await
            .expect("an id outside the skus");
    let ids = vec![extra, by_sku[0]];

    let mut tx = db.pool.begin().await.expect("begin");
    let plan: Vec<String> =
        sqlx::query_scalar(&format!("explain (analyze, costs off) {LOCK_PRODUCTS}"))
            .bind(&skus)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await
            .expect("explain the lock");
    let plan = plan.join("\n");
    assert!(
        plan.contains("products_sku_key"),
        "the skus are not resolved through their btree:\n{plan}"
    );
    assert!(
        plan.contains("products_pkey"),
        "the rows are not locked through the primary key:\n{plan}"
    );
    assert!(
        !plan.contains("trgm") && !plan.contains("Seq Scan on products"),
        "the lock reads more of the table than it names:\n{plan}"
    );

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
