//! Alerts, the dashboard, and reconciliation of stock against the ledger.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_stock_alerts_open_when_stock_falls_and_resolve_when_it_recovers() {
    let mut app = TestApp::start().await;
    app.start_notifier();
    let admin = app.admin_token().await;
    let staff = app.user_with_role("staff").await;
    let (_, customer) = app.customer().await;
    app.product_with_stock(&admin, "ALERT-1", 3, 2).await;
    app.place(&customer, json!([{"sku": "ALERT-1", "quantity": 2}]))
        .await;

    let alerts = |query: &'static str| {
        let app = &app;
        let staff = staff.clone();
        async move {
            let page: Value = app
                .get(&staff, &format!("/alerts{query}"))
                .await
                .json()
                .await
                .unwrap();
            page["items"].as_array().unwrap().clone()
        }
    };
    let active = testkit::eventually(Duration::from_secs(20), "an active alert", || async {
        let items = alerts("?state=active").await;
        (!items.is_empty()).then_some(items)
    })
    .await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["sku"], "ALERT-1");
    assert_eq!(active[0]["available"], 1);
    assert_eq!(active[0]["threshold"], 2);

    let refused = app.get(&customer, "/alerts").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let bad = app.get(&staff, "/alerts?state=sleeping").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    app.post(
        &admin,
        "/inventory/receive",
        json!({"sku": "ALERT-1", "quantity": 5}),
    )
    .await;
    testkit::eventually(Duration::from_secs(20), "the alert to resolve", || async {
        let items = alerts("?state=resolved").await;
        (items.len() == 1).then_some(())
    })
    .await;
    assert!(alerts("?state=active").await.is_empty());
    let all = alerts("").await;
    assert_eq!(all.len(), 1, "one alert per crossing: {all:?}");
    assert!(all[0]["resolved_at"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_counts_stock_orders_today_and_top_movers_for_staff() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let staff = app.user_with_role("staff").await;
    let (_, customer) = app.customer().await;
    app.product_with_stock(&admin, "DASH-A", 10, 0).await;
    app.product_with_stock(&admin, "DASH-B", 5, 5).await;
    app.place(&customer, json!([{"sku": "DASH-A", "quantity": 3}]))
        .await;
    app.place(&customer, json!([{"sku": "DASH-B", "quantity": 6}]))
        .await;
    app.place(&customer, json!([{"sku": "DASH-B", "quantity": 1}]))
        .await;
    app.wait_decided(3).await;

    assert_eq!(
        app.get(&customer, "/dashboard").await.status(),
        StatusCode::FORBIDDEN
    );
    let dashboard: Value = app.get(&staff, "/dashboard").await.json().await.unwrap();
    assert_eq!(
        dashboard["stock"],
        json!({"products": 2, "locations": 1, "on_hand": 15, "reserved": 4, "available": 11,
               "low_stock": 1, "active_alerts": 0})
    );
    assert_eq!(
        dashboard["orders_today"],
        json!([{"status": "confirmed", "orders": 2}, {"status": "rejected", "orders": 1}])
    );
    assert_eq!(
        dashboard["top_movers"],
        json!([{"sku": "DASH-A", "units_out": 3}, {"sku": "DASH-B", "units_out": 1}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_proves_stock_equals_the_ledger_and_reports_drift() {
    let app = TestApp::start_with(&[("ORDERFLOW_RECONCILE_INTERVAL_SECONDS", "1")], true).await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "RECON-1", 7, 0).await;
    let (_, customer) = app.customer().await;
    app.place(&customer, json!([{"sku": "RECON-1", "quantity": 2}]))
        .await;
    app.wait_decided(1).await;

    for role in ["staff", "manager"] {
        let token = app.user_with_role(role).await;
        let refused = app.get(&token, "/admin/reconciliation").await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{role}");
    }
    let report: Value = app
        .get(&admin, "/admin/reconciliation")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report, json!({"levels_checked": 1, "drift": []}));

    // Change a level behind the ledger's back, as a bad manual fix would.
    sqlx::query("update stock_levels set on_hand = on_hand + 1")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let report: Value = app
        .get(&admin, "/admin/reconciliation")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        report["drift"],
        json!([{"sku": "RECON-1", "location": "main", "on_hand": 8, "ledger_on_hand": 7,
                "reserved": 2, "ledger_reserved": 2}])
    );

    // The command says the same and fails.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ingress-api"))
        .arg("reconcile")
        .env("DATABASE_URL", &app.db.url)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["drift"], report["drift"]);

    // And the processor that owns partition 0 exports it as a metric.
    testkit::eventually(Duration::from_secs(20), "the drift metric", || async {
        let metrics = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metrics
            .lines()
            .any(|l| l == "orderflow_ledger_drift_rows 1")
            .then_some(())
    })
    .await;
}
