//! Catalogue search stays an index lookup at 100,000 products: the plan of
//! exactly the query `GET /products?search=` runs uses the trigram indexes.
//!
//! Run with `--nocapture` to see the plans the README quotes.

use std::time::Instant;

use ingress_api::http::products::{ProductSearch, ProductView};
use sqlx::{PgPool, Postgres, QueryBuilder};
use testkit::TestDatabase;

const PRODUCTS: i64 = 100_000;

/// The plan of the endpoint's query for `search`, run with its real
/// parameters bound, and the rows it answers.
async fn plan_and_rows(pool: &PgPool, search: &ProductSearch) -> (String, Vec<ProductView>) {
    let mut explain: QueryBuilder<Postgres> = QueryBuilder::new("explain (analyze, costs off) ");
    search.push_query(&mut explain);
    let lines: Vec<String> = explain
        .build_query_scalar()
        .fetch_all(pool)
        .await
        .expect("explain the search");
    let mut query = QueryBuilder::new("");
    search.push_query(&mut query);
    let rows: Vec<ProductView> = query
        .build_query_as()
        .fetch_all(pool)
        .await
        .expect("run the search");
    (lines.join("\n"), rows)
}

fn assert_uses_trigram_index(plan: &str, index: &str) {
    assert!(
        plan.contains(&format!("Bitmap Index Scan on {index}")),
        "the plan does not use {index}:\n{plan}"
    );
    assert!(
        !plan.contains("Seq Scan on products"),
        "the plan reads every product:\n{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searching_100000_products_by_name_or_sku_fragment_uses_the_trigram_indexes() {
    testkit::init_logging();
    let db = TestDatabase::create().await.expect("test database");
    let started = Instant::now();
    sqlx::query(
        "insert into products (sku, name, price_cents, category, low_stock_threshold)
         select 'SKU-' || lpad(i::text, 6, '0'), 'Part ' || md5(i::text), i % 5000,
                'category-' || (i % 40), i % 10
         from generate_series(1, $1) as i",
    )
    .bind(PRODUCTS)
    .execute(&db.pool)
    .await
    .expect("insert the products");
    // Stock for every product, so the totals each row carries are real work.
    sqlx::query(
        "insert into stock_levels (product_id, location_id, on_hand)
         select p.id, l.id, p.id % 20 from products p, locations l where l.code = 'main'",
    )
    .execute(&db.pool)
    .await
    .expect("insert the stock levels");
    sqlx::query("analyze products, stock_levels")
        .execute(&db.pool)
        .await
        .expect("analyze");
    println!("inserted {PRODUCTS} products in {:?}", started.elapsed());

    // A fragment of one product's name, in another case than stored.
    let fragment: String = sqlx::query_scalar("select upper(substr(md5('42424'), 3, 8))")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let by_name = ProductSearch {
        search: Some(fragment),
        limit: 51,
        ..ProductSearch::default()
    };
    let (plan, rows) = plan_and_rows(&db.pool, &by_name).await;
    println!(
        "GET /products?search={}\n{plan}\n",
        by_name.search.as_deref().unwrap()
    );
    assert_uses_trigram_index(&plan, "products_name_trgm_idx");
    assert!(
        rows.iter().any(|p| p.sku == "SKU-042424"),
        "the product whose name holds the fragment is found"
    );

    // A sku fragment: SKU-04242 matches SKU-042420 to SKU-042429.
    let by_sku = ProductSearch {
        search: Some("sku-04242".to_owned()),
        limit: 51,
        ..ProductSearch::default()
    };
    let (plan, rows) = plan_and_rows(&db.pool, &by_sku).await;
    println!("GET /products?search=sku-04242\n{plan}\n");
    assert_uses_trigram_index(&plan, "products_sku_search_trgm_idx");
    let skus: Vec<&str> = rows.iter().map(|p| p.sku.as_str()).collect();
    assert_eq!(skus.len(), 10, "{skus:?}");
    assert!(skus.iter().all(|s| s.starts_with("SKU-04242")));

    // With the other filters of the endpoint too.
    let filtered = ProductSearch {
        search: Some("sku-0424".to_owned()),
        category: Some("category-4".to_owned()),
        low_stock: Some(true),
        limit: 51,
        ..ProductSearch::default()
    };
    let (plan, rows) = plan_and_rows(&db.pool, &filtered).await;
    println!("GET /products?search=sku-0424&category=category-4&low_stock=true\n{plan}\n");
    assert!(
        !plan.contains("Seq Scan on products"),
        "the plan reads every product:\n{plan}"
    );
    assert!(rows
        .iter()
        .all(|p| p.category.as_deref() == Some("category-4") && p.low_stock));
}
