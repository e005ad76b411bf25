//! Cancelling and fulfilling orders: through the partition's queue, behind
//! the placement, so they never race a decision.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::TestApp;
use uuid::Uuid;

async fn wait_for_status(app: &TestApp, token: &str, id: Uuid, want: &'static str) {
    testkit::eventually(
        Duration::from_secs(20),
        "the order's new status",
        || async { (app.order(token, id).await["status"] == want).then_some(()) },
    )
    .await;
}

async fn movements(app: &TestApp, kind: &str) -> i64 {
    sqlx::query_scalar("select count(*) from stock_movements where kind = $1")
        .bind(kind)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_order_releases_its_reservation_for_the_next_order() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "LAST-1", 1, 0).await;
    let (_, ann) = app.customer().await;
    let (_, bob) = app.customer().await;

    let first = app
        .place(&ann, json!([{"sku": "LAST-1", "quantity": 1}]))
        .await;
    let second = app
        .place(&bob, json!([{"sku": "LAST-1", "quantity": 1}]))
        .await;
    app.wait_decided(2).await;
    assert_eq!(app.order(&ann, first).await["status"], "confirmed");
    assert_eq!(app.order(&bob, second).await["status"], "rejected");

    // Bob cannot cancel Ann's order; Ann can.
    let refused = app
        .post(&bob, &format!("/orders/{first}/cancel"), json!({}))
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let response = app
        .post(&ann, &format!("/orders/{first}/cancel"), json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["location"], format!("/orders/{first}"));
    wait_for_status(&app, &ann, first, "cancelled").await;
    assert_eq!(app.stock("LAST-1").await, (1, 0));

    // A second cancel of a cancelled order, or of a rejected one, is refused.
    let again = app
        .post(&ann, &format!("/orders/{first}/cancel"), json!({}))
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let rejected = app
        .post(&bob, &format!("/orders/{second}/cancel"), json!({}))
        .await;
    assert_eq!(rejected.status(), StatusCode::CONFLICT);

    let third = app
        .place(&bob, json!([{"sku": "LAST-1", "quantity": 1}]))
        .await;
    wait_for_status(&app, &bob, third, "confirmed").await;
    assert_eq!(app.stock("LAST-1").await, (1, 1));
    assert_eq!(movements(&app, "release").await, 1);
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fulfilled_order_ships_its_units_from_the_locations_it_was_allocated_from() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    sqlx::query("insert into locations (code, name) values ('east', 'East bin')")
        .execute(&app.db.pool)
        .await
        .unwrap();
    app.product_with_stock(&admin, "SPLIT-1", 3, 0).await;
    let receive = app
        .post(
            &admin,
            "/inventory/receive",
            json!({"sku": "SPLIT-1", "location": "east", "quantity": 2}),
        )
        .await;
    assert_eq!(receive.status(), StatusCode::OK);
    let (_, customer) = app.customer().await;
    let staff = app.user_with_role("staff").await;

    let id = app
        .place(&customer, json!([{"sku": "SPLIT-1", "quantity": 4}]))
        .await;
    wait_for_status(&app, &customer, id, "confirmed").await;

    let forbidden = app
        .post(&customer, &format!("/orders/{id}/fulfil"), json!({}))
        .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let response = app
        .post(&staff, &format!("/orders/{id}/fulfil"), json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    wait_for_status(&app, &customer, id, "fulfilled").await;

    // Most available first: 3 from main, then 1 from east.
    let levels: Vec<(String, i64, i64)> = sqlx::query_as(
        "select l.code, s.on_hand, s.reserved from stock_levels s
         join locations l on l.id = s.location_id order by l.code",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(levels, vec![("east".into(), 1, 0), ("main".into(), 0, 0)]);
    let actors: Vec<Option<Uuid>> =
        sqlx::query_scalar("select distinct actor_id from stock_movements where kind = 'fulfil'")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(actors.len(), 1);
    assert!(actors[0].is_some(), "the fulfilment records who shipped it");
    assert_eq!(
        app.post(&staff, &format!("/orders/{id}/cancel"), json!({}))
            .await
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_queued_right_behind_its_placement_is_applied_after_the_decision() {
    // With no processor running both commands wait in the queue; the cancel
    // can only be applied after the placement it follows was decided.
    let mut app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "QUEUED-1", 5, 0).await;
    let (_, customer) = app.customer().await;
    let id = app
        .place(&customer, json!([{"sku": "QUEUED-1", "quantity": 2}]))
        .await;
    let cancel = app
        .post(&customer, &format!("/orders/{id}/cancel"), json!({}))
        .await;
    assert_eq!(cancel.status(), StatusCode::ACCEPTED);
    assert_eq!(cancel.json::<Value>().await.unwrap()["status"], "pending");
    // Asking twice queues one cancellation: the message id is the same.
    let twice = app
        .post(&customer, &format!("/orders/{id}/cancel"), json!({}))
        .await;
    assert_eq!(twice.status(), StatusCode::ACCEPTED);
    assert_eq!(app.queued().await, 2);

    app.start_processor().await;
    wait_for_status(&app, &customer, id, "cancelled").await;
    assert_eq!(app.stock("QUEUED-1").await, (5, 0));
    assert_eq!(movements(&app, "reserve").await, 1);
    assert_eq!(movements(&app, "release").await, 1);
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancellations_racing_a_flood_of_orders_never_oversell_or_release_twice() {
    const STOCK: i64 = 20;
    const ORDERS: usize = 120;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "RACE-1", STOCK, 0).await;
    let mut customers = Vec::new();
    for _ in 0..8 {
        customers.push(app.customer().await.1);
    }

    // Every even order is cancelled by its customer straight after the 202,
    // while the other orders are still arriving and being decided; some
    // cancels are sent twice.
    let tasks = (0..ORDERS).map(|i| {
        let app = &app;
        let token = customers[i % customers.len()].clone();
        async move {
            let id = app
                .place(&token, json!([{"sku": "RACE-1", "quantity": 1}]))
                .await;
            if i % 2 == 0 {
                for _ in 0..(1 + i % 4 / 2) {
                    let response = app
                        .post(&token, &format!("/orders/{id}/cancel"), json!({}))
                        .await;
                    assert!(
                        matches!(
                            response.status(),
                            StatusCode::ACCEPTED | StatusCode::CONFLICT
                        ),
                        "{}",
                        response.status()
                    );
                }
            }
            (i, id)
        }
    });
    let placed: Vec<(usize, Uuid)> = futures::future::join_all(tasks).await;
    app.wait_decided(ORDERS as i64).await;
    let cancellable: Vec<Uuid> = placed
        .iter()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, id)| *id)
        .collect();
    testkit::eventually(Duration::from_secs(30), "every requested cancel to be applied", || async {
        let open: i64 = sqlx::query_scalar(
            "select count(*) from orders where id = any($1) and status not in ('cancelled', 'rejected')",
        )
        .bind(&cancellable)
        .fetch_one(&app.db.pool)
        .await
        .ok()?;
        (open == 0).then_some(())
    })
    .await;

    let (confirmed, cancelled): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where status = 'confirmed'), count(*) filter (where status = 'cancelled')
         from orders",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let (on_hand, reserved) = app.stock("RACE-1").await;
    assert_eq!(on_hand, STOCK);
    assert_eq!(
        reserved, confirmed,
        "reserved units are exactly the confirmed orders'"
    );
    assert!(confirmed <= STOCK);
    assert_eq!(
        movements(&app, "release").await,
        cancelled,
        "one release per cancelled order"
    );
    assert_eq!(app.ledger_drift().await, 0);
}
