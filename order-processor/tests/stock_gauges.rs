//! The stock figures the processor exports for dashboards, measured on a
//! real database: the low-stock count agrees with `GET /dashboard`'s, and
//! archived products and locations count for nothing.

use order_processor::stock_gauges::{measure, StockFigures};
use orderflow_core::telemetry;
use sqlx::PgPool;
use testkit::TestDatabase;

async fn location(pool: &PgPool, code: &str, archived: bool) {
    sqlx::query(
        "insert into locations (code, name, archived_at)
         values ($1, $1, case when $2 then now() end)",
    )
    .bind(code)
    .bind(archived)
    .execute(pool)
    .await
    .unwrap();
}

/// A product with a threshold and stock at the given locations.
async fn product(pool: &PgPool, sku: &str, threshold: i64, archived: bool, stock: &[(&str, i64)]) {
    let id: i64 = sqlx::query_scalar(
        "insert into products (sku, name, price_cents, low_stock_threshold, archived_at)
         values ($1, $1, 100, $2, case when $3 then now() end) returning id",
    )
    .bind(sku)
    .bind(threshold)
    .bind(archived)
    .fetch_one(pool)
    .await
    .unwrap();
    for (code, units) in stock {
        sqlx::query(
            "insert into stock_levels (product_id, location_id, on_hand)
             select $1, id, $3 from locations where code = $2",
        )
        .bind(id)
        .bind(code)
        .bind(units)
        .execute(pool)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn low_stock_count_and_available_units_per_location() {
    let metrics = telemetry::prometheus();
    let db = TestDatabase::create().await.unwrap();
    let pool = &db.pool;
    location(pool, "backroom", false).await;
    location(pool, "closed", true).await;
    // Plenty: 10 + 4 available over two locations, threshold 5.
    product(pool, "PLENTY", 5, false, &[("main", 10), ("backroom", 4)]).await;
    // Low: 3 available, threshold 5.
    product(pool, "SCARCE", 5, false, &[("main", 3)]).await;
    // Low: nothing stocked anywhere, threshold 0 (at the threshold is low).
    product(pool, "NONE", 0, false, &[]).await;
    // Archived: neither low nor available, whatever its stock.
    product(pool, "GONE", 5, true, &[("main", 2)]).await;
    // Reserved units are not available: 6 on hand, 4 reserved, threshold 2.
    product(pool, "HELD", 2, false, &[("backroom", 6)]).await;
    sqlx::query(
        "update stock_levels set reserved = 4
         where product_id = (select id from products where sku = 'HELD')",
    )
    .execute(pool)
    .await
    .unwrap();

    let figures = measure(pool).await.unwrap();
    assert_eq!(
        figures,
        StockFigures {
            low_stock_products: 3,
            available_by_location: vec![("backroom".into(), 4 + 2), ("main".into(), 10 + 3)],
        }
    );

    let dashboard_low: i64 = sqlx::query_scalar(
        "select count(*) from (
             select p.low_stock_threshold, coalesce(sum(s.on_hand - s.reserved), 0) as available
             from products p left join stock_levels s on s.product_id = p.id
             where p.archived_at is null group by p.id) t
         where available <= low_stock_threshold",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(figures.low_stock_products, dashboard_low);

    let text = metrics.render();
    assert!(text.contains("orderflow_low_stock_products 3"), "{text}");
    assert!(
        text.contains("orderflow_stock_available_units{location=\"main\"} 13"),
        "{text}"
    );
    assert!(!text.contains("location=\"closed\""), "{text}");
}

#[test]
fn every_decision_counter_is_exported_from_the_start() {
    let handle = telemetry::prometheus();
    order_processor::known_series::export();
    let text = handle.render();
    for series in [
        r#"orderflow_orders_decided_total{outcome="confirmed",reason=""} 0"#,
        r#"orderflow_orders_decided_total{outcome="rejected",reason="insufficient_stock"} 0"#,
        r#"orderflow_orders_decided_total{outcome="rejected",reason="unknown_sku"} 0"#,
        r#"orderflow_orders_decided_total{outcome="rejected",reason="product_archived"} 0"#,
        r#"orderflow_orders_settled_total{outcome="fulfilled"} 0"#,
        r#"orderflow_poison_messages_total{stream="orders"} 0"#,
    ] {
        assert!(text.contains(series), "{series} missing from\n{text}");
    }
}
