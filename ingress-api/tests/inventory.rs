//! Inventory management over HTTP: changing and archiving products,
//! locations, the staff stock operations (receive, ship, transfer, adjust),
//! the stock and ledger reads, who may do what, bad input, and staff
//! operations racing a flood of orders without the ledger drifting.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use support::{problem, TestApp};
use uuid::Uuid;

/// The refused fields of a 422 problem.
async fn refused(response: Response) -> Vec<String> {
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

async fn ok(response: Response) -> Value {
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn create_location(app: &TestApp, manager: &str, code: &str) {
    let response = app
        .post(
            manager,
            "/locations",
            json!({"code": code, "name": format!("Bin {code}")}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// (on_hand, reserved) of a sku at one location.
async fn level(app: &TestApp, sku: &str, location: &str) -> (i64, i64) {
    sqlx::query_as(
        "select coalesce(sum(s.on_hand), 0)::int8, coalesce(sum(s.reserved), 0)::int8
         from stock_levels s join products p on p.id = s.product_id
         join locations l on l.id = s.location_id where p.sku = $1 and l.code = $2",
    )
    .bind(sku)
    .bind(location)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

/// One ledger row as a test looks at it.
#[derive(Debug, sqlx::FromRow)]
struct LedgerRow {
    location: String,
    kind: String,
    on_hand_delta: i64,
    actor_role: Option<String>,
    reason: Option<String>,
    correlation_id: Uuid,
}

/// The ledger rows of a sku, oldest first.
async fn ledger(app: &TestApp, sku: &str) -> Vec<LedgerRow> {
    sqlx::query_as(
        "select l.code as location, m.kind, m.on_hand_delta, u.role as actor_role, m.reason,
                m.correlation_id
         from stock_movements m join products p on p.id = m.product_id
         join locations l on l.id = m.location_id left join users u on u.id = m.actor_id
         where p.sku = $1 order by m.id",
    )
    .bind(sku)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

async fn ledger_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from stock_movements")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// (kind, payload) of the events waiting in the outbox, oldest first. Only
/// meaningful without a processor, whose relay drains the outbox.
async fn outbox(app: &TestApp) -> Vec<(String, Value)> {
    let rows: Vec<(String, Value)> =
        sqlx::query_as("select subject, payload from outbox order by id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(_, payload)| (payload["type"].as_str().unwrap().to_owned(), payload))
        .collect()
}

async fn order_status(app: &TestApp, token: &str, id: Uuid) -> Value {
    ok(app.get(token, &format!("/orders/{id}")).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_change_products_and_a_threshold_moved_across_the_stock_raises_low_or_recovered() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let manager = app.user_with_role("manager").await;
    let staff = app.user_with_role("staff").await;
    let (_, customer) = app.customer().await;
    app.product_with_stock(&admin, "WIDGET-1", 10, 2).await;

    let changed = ok(app.patch(&manager,
        "/products/WIDGET-1",
        json!({"name": "Blue widget", "price_cents": 1500, "unit": "box", "category": "widgets"}),
    )
    .await)
    .await;
    assert_eq!(changed["name"], "Blue widget");
    assert_eq!(changed["price_cents"], 1500);
    assert_eq!(changed["unit"], "box");
    assert_eq!(changed["category"], "widgets");
    assert_eq!(changed["low_stock_threshold"], 2);
    assert_eq!(changed["on_hand"], 10);
    let page = ok(app.get(&customer, "/products?category=widgets").await).await;
    assert_eq!(page["items"][0]["sku"], "WIDGET-1");
    let cleared = ok(app
        .patch(&manager, "/products/WIDGET-1", json!({"category": null}))
        .await)
    .await;
    assert!(cleared["category"].is_null());
    assert_eq!(cleared["name"], "Blue widget");

    // 10 available: a threshold of 10 makes it low, 12 keeps it low, 3
    // makes it recover. Each crossing is one event, written with the change.
    let before = outbox(&app).await.len();
    ok(app
        .patch(
            &manager,
            "/products/WIDGET-1",
            json!({"low_stock_threshold": 10}),
        )
        .await)
    .await;
    ok(app
        .patch(
            &manager,
            "/products/WIDGET-1",
            json!({"low_stock_threshold": 12}),
        )
        .await)
    .await;
    let recovered = ok(app
        .patch(
            &manager,
            "/products/WIDGET-1",
            json!({"low_stock_threshold": 3}),
        )
        .await)
    .await;
    assert_eq!(recovered["low_stock"], false);
    let events = outbox(&app).await;
    let crossings: Vec<(&str, i64, i64)> = events[before..]
        .iter()
        .map(|(kind, payload)| {
            (
                kind.as_str(),
                payload["available"].as_i64().unwrap(),
                payload["threshold"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        crossings,
        [("stock.low", 10, 10), ("stock.recovered", 10, 3)]
    );

    // Bad changes are refused naming the fields, and change nothing.
    assert_eq!(
        refused(app.patch(&manager, "/products/WIDGET-1", json!({})).await).await,
        ["body"]
    );
    assert_eq!(
        refused(
            app.patch(
                &manager,
                "/products/WIDGET-1",
                json!({"name": "  ", "price_cents": -1, "low_stock_threshold": -1})
            )
            .await
        )
        .await,
        ["name", "price_cents", "low_stock_threshold"]
    );
    assert_eq!(
        refused(
            app.patch(&manager, "/products/WIDGET-1", json!({"colour": "red"}))
                .await
        )
        .await
        .len(),
        1
    );
    problem(
        app.patch(&manager, "/products/NOPE", json!({"name": "x"}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.patch(&staff, "/products/WIDGET-1", json!({"name": "x"}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.patch(&customer, "/products/WIDGET-1", json!({"name": "x"}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let product = ok(app.get(&customer, "/products/WIDGET-1").await).await;
    assert_eq!(product["name"], "Blue widget");
    assert_eq!(product["low_stock_threshold"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_products_leave_the_listing_reject_new_orders_and_keep_their_history() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let manager = app.user_with_role("manager").await;
    let staff = app.user_with_role("staff").await;
    let (_, customer) = app.customer().await;
    app.product_with_stock(&admin, "OLD-1", 5, 0).await;
    let before = app
        .place(&customer, json!([{"sku": "OLD-1", "quantity": 2}]))
        .await;
    app.wait_decided(1).await;
    assert_eq!(
        order_status(&app, &customer, before).await["status"],
        "confirmed"
    );

    problem(
        app.post(&staff, "/products/OLD-1/archive", json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.post(&customer, "/products/OLD-1/archive", json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.post(&manager, "/products/NOPE/archive", json!({}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let archived = ok(app
        .post(&manager, "/products/OLD-1/archive", json!({}))
        .await)
    .await;
    assert_eq!(archived["archived"], true);
    let archived_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select archived_at from products where sku = 'OLD-1'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let again = ok(app
        .post(&manager, "/products/OLD-1/archive", json!({}))
        .await)
    .await;
    assert_eq!(again["archived"], true);
    let archived_again: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select archived_at from products where sku = 'OLD-1'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        archived_at, archived_again,
        "archiving twice changes nothing"
    );

    // Out of the listing unless asked for; still readable with its stock.
    let listed = ok(app.get(&customer, "/products").await).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0);
    let listed = ok(app.get(&customer, "/products?include_archived=true").await).await;
    assert_eq!(listed["items"][0]["sku"], "OLD-1");
    assert_eq!(listed["items"][0]["archived"], true);
    let detail = ok(app.get(&customer, "/products/OLD-1").await).await;
    assert_eq!(
        (detail["on_hand"].as_i64(), detail["reserved"].as_i64()),
        (Some(5), Some(2))
    );

    // New orders are rejected with their own reason; the confirmed one stands.
    let after = app
        .place(&customer, json!([{"sku": "OLD-1", "quantity": 1}]))
        .await;
    app.wait_decided(2).await;
    let rejected = order_status(&app, &customer, after).await;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["reason"], "product_archived");
    assert_eq!(
        order_status(&app, &customer, before).await["status"],
        "confirmed"
    );

    // No new stock, no changes; what remains may still go out.
    assert_eq!(
        refused(
            app.post(
                &staff,
                "/inventory/receive",
                json!({"sku": "OLD-1", "quantity": 1})
            )
            .await
        )
        .await,
        ["sku"]
    );
    problem(
        app.patch(&manager, "/products/OLD-1", json!({"name": "Renamed"}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    let shipped = ok(app
        .post(
            &staff,
            "/inventory/ship",
            json!({"sku": "OLD-1", "location": "main", "quantity": 3, "reason": "clearance"}),
        )
        .await)
    .await;
    assert_eq!(shipped["on_hand"], 2);
    assert_eq!(shipped["available"], 0);
    let kinds: Vec<String> = ledger(&app, "OLD-1")
        .await
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(kinds, ["receive", "reserve", "ship"]);
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locations_are_created_listed_with_totals_renamed_and_archived_only_when_empty() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let manager = app.user_with_role("manager").await;
    let staff = app.user_with_role("staff").await;
    let (_, customer) = app.customer().await;
    app.product_with_stock(&admin, "BOX-1", 0, 0).await;

    let created = app
        .post(
            &manager,
            "/locations",
            json!({"code": "aisle-7", "name": "Aisle 7"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["code"], "aisle-7");
    assert_eq!(created["archived"], false);
    problem(
        app.post(
            &manager,
            "/locations",
            json!({"code": "aisle-7", "name": "Again"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        refused(
            app.post(
                &manager,
                "/locations",
                json!({"code": "aisle 7", "name": ""})
            )
            .await
        )
        .await,
        ["code", "name"]
    );
    assert_eq!(
        refused(
            app.post(
                &manager,
                "/locations",
                json!({"code": "x".repeat(65), "name": "Long"})
            )
            .await
        )
        .await,
        ["code"]
    );
    problem(
        app.post(
            &staff,
            "/locations",
            json!({"code": "bin-1", "name": "Bin"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.get(&customer, "/locations").await,
        StatusCode::FORBIDDEN,
    )
    .await;

    ok(app
        .post(
            &staff,
            "/inventory/receive",
            json!({"sku": "BOX-1", "location": "aisle-7", "quantity": 5}),
        )
        .await)
    .await;
    let listed = ok(app.get(&staff, "/locations").await).await;
    let totals: Vec<(String, i64, bool)> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["code"].as_str().unwrap().to_owned(),
                l["on_hand"].as_i64().unwrap(),
                l["archived"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        totals,
        [
            ("aisle-7".to_owned(), 5, false),
            ("main".to_owned(), 0, false)
        ]
    );

    let renamed = ok(app
        .patch(
            &manager,
            "/locations/aisle-7",
            json!({"name": "Aisle seven"}),
        )
        .await)
    .await;
    assert_eq!(renamed["name"], "Aisle seven");
    assert_eq!(renamed["on_hand"], 5);
    problem(
        app.patch(&staff, "/locations/aisle-7", json!({"name": "Mine"}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        refused(
            app.patch(&manager, "/locations/aisle-7", json!({"name": " "}))
                .await
        )
        .await,
        ["name"]
    );
    problem(
        app.patch(&manager, "/locations/nowhere", json!({"name": "Nowhere"}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // Holding stock, it stays; emptied, it goes, and takes nothing more.
    let held = problem(
        app.post(&manager, "/locations/aisle-7/archive", json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(held["detail"].as_str().unwrap().contains("5 units"));
    problem(
        app.post(&staff, "/locations/aisle-7/archive", json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.post(&manager, "/locations/nowhere/archive", json!({}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    ok(app
        .post(&staff, "/inventory/transfer",
              json!({"sku": "BOX-1", "from_location": "aisle-7", "to_location": "main", "quantity": 5}))
        .await)
    .await;
    let archived = ok(app
        .post(&manager, "/locations/aisle-7/archive", json!({}))
        .await)
    .await;
    assert_eq!(archived["archived"], true);
    ok(app
        .post(&manager, "/locations/aisle-7/archive", json!({}))
        .await)
    .await;
    assert_eq!(
        refused(
            app.post(
                &staff,
                "/inventory/receive",
                json!({"sku": "BOX-1", "location": "aisle-7", "quantity": 1})
            )
            .await
        )
        .await,
        ["location"]
    );
    problem(
        app.patch(&manager, "/locations/aisle-7", json!({"name": "Back"}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    let listed = ok(app.get(&staff, "/locations").await).await;
    assert_eq!(listed["items"][0]["archived"], true);
    let active = ok(app.get(&staff, "/locations?include_archived=false").await).await;
    assert_eq!(active["items"].as_array().unwrap().len(), 1);
    assert_eq!(active["items"][0]["code"], "main");
    let first = ok(app.get(&staff, "/locations?limit=1").await).await;
    let second = ok(app
        .get(
            &staff,
            &format!(
                "/locations?limit=1&cursor={}",
                first["next_cursor"].as_str().unwrap()
            ),
        )
        .await)
    .await;
    assert_eq!(second["items"][0]["code"], "main");
    assert!(second["next_cursor"].is_null());
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipping_takes_units_out_with_an_attributed_ledger_row_and_never_more_than_is_available() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let staff = app.user_with_role("staff").await;
    let (_, customer) = app.customer().await;
    app.product_with_stock(&admin, "SHIP-1", 10, 0).await;
    app.place(&customer, json!([{"sku": "SHIP-1", "quantity": 3}]))
        .await;
    app.wait_decided(1).await;
    assert_eq!(level(&app, "SHIP-1", "main").await, (10, 3));

    let short = problem(
        app.post(
            &staff,
            "/inventory/ship",
            json!({"sku": "SHIP-1", "location": "main", "quantity": 8}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(short["detail"].as_str().unwrap().contains("only 7"));
    let shipped = ok(app
        .post(
            &staff,
            "/inventory/ship",
            json!({"sku": "SHIP-1", "location": "main", "quantity": 7, "reason": "return to supplier"}),
        )
        .await)
    .await;
    assert_eq!(
        shipped,
        json!({"sku": "SHIP-1", "location": "main", "on_hand": 3, "reserved": 3, "available": 0})
    );
    problem(
        app.post(
            &staff,
            "/inventory/ship",
            json!({"sku": "SHIP-1", "location": "main", "quantity": 1}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;

    let rows = ledger(&app, "SHIP-1").await;
    let ship = rows.last().unwrap();
    assert_eq!((ship.kind.as_str(), ship.on_hand_delta), ("ship", -7));
    assert_eq!(ship.actor_role.as_deref(), Some("staff"));
    assert_eq!(ship.reason.as_deref(), Some("return to supplier"));
    assert_eq!(
        rows.len(),
        3,
        "receive, reserve, ship; refusals write nothing"
    );
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_moves_units_in_two_ledger_rows_sharing_one_correlation_id() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let staff = app.user_with_role("staff").await;
    create_location(&app, &admin, "backroom").await;
    app.product_with_stock(&admin, "MOVE-1", 10, 0).await;
    let events_before = outbox(&app).await.len();

    let moved = ok(app
        .post(
            &staff,
            "/inventory/transfer",
            json!({"sku": "MOVE-1", "from_location": "main", "to_location": "backroom", "quantity": 4}),
        )
        .await)
    .await;
    assert_eq!(
        moved,
        json!({
            "from": {"sku": "MOVE-1", "location": "main", "on_hand": 6, "reserved": 0, "available": 6},
            "to": {"sku": "MOVE-1", "location": "backroom", "on_hand": 4, "reserved": 0, "available": 4},
        })
    );
    let rows = ledger(&app, "MOVE-1").await;
    let legs: Vec<(&str, &str, i64)> = rows[1..]
        .iter()
        .map(|r| (r.location.as_str(), r.kind.as_str(), r.on_hand_delta))
        .collect();
    assert_eq!(
        legs,
        [("main", "transfer_out", -4), ("backroom", "transfer_in", 4)]
    );
    assert_eq!(rows[1].correlation_id, rows[2].correlation_id);
    assert_ne!(rows[0].correlation_id, rows[1].correlation_id);
    assert!(rows[1..]
        .iter()
        .all(|r| r.actor_role.as_deref() == Some("staff")));
    // The product's totals did not change, and the event says so.
    let events = outbox(&app).await;
    assert_eq!(events.len(), events_before + 1);
    assert_eq!(events.last().unwrap().0, "stock.changed");
    assert_eq!(events.last().unwrap().1["on_hand"], 10);

    problem(
        app.post(
            &staff,
            "/inventory/transfer",
            json!({"sku": "MOVE-1", "from_location": "main", "to_location": "backroom", "quantity": 7}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        refused(app
            .post(
                &staff,
                "/inventory/transfer",
                json!({"sku": "MOVE-1", "from_location": "main", "to_location": "main", "quantity": 1}),
            )
            .await)
        .await,
        ["to_location"]
    );
    assert_eq!(level(&app, "MOVE-1", "main").await, (6, 0));
    assert_eq!(level(&app, "MOVE-1", "backroom").await, (4, 0));
    assert_eq!(ledger_rows(&app).await, 3);
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adjustment_sets_on_hand_to_the_count_with_one_ledger_row_of_the_difference() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    let staff = app.user_with_role("staff").await;
    let (_, customer) = app.customer().await;
    create_location(&app, &admin, "cage").await;
    app.product_with_stock(&admin, "COUNT-1", 10, 0).await;
    app.place(&customer, json!([{"sku": "COUNT-1", "quantity": 4}]))
        .await;
    app.wait_decided(1).await;
    let adjust = |counted: i64, reason: &str, location: &str| {
        let body = json!({"sku": "COUNT-1", "location": location, "counted_quantity": counted,
                          "reason": reason});
        let (app, staff) = (&app, staff.clone());
        async move { app.post(&staff, "/inventory/adjust", body).await }
    };

    let damaged = ok(adjust(8, "damage", "main").await).await;
    assert_eq!(
        (damaged["on_hand"].as_i64(), damaged["reserved"].as_i64()),
        (Some(8), Some(4))
    );
    let unchanged = ok(adjust(8, "cycle_count", "main").await).await;
    assert_eq!(unchanged["on_hand"], 8);
    let found = ok(adjust(12, "found", "main").await).await;
    assert_eq!(found["available"], 8);
    let below = problem(adjust(3, "cycle_count", "main").await, StatusCode::CONFLICT).await;
    assert!(below["detail"]
        .as_str()
        .unwrap()
        .contains("4 of COUNT-1 are reserved"));
    let lost = ok(adjust(4, "loss", "main").await).await;
    assert_eq!(lost["available"], 0);
    // Counting where there was no row yet creates it.
    let elsewhere = ok(adjust(5, "found", "cage").await).await;
    assert_eq!(elsewhere["on_hand"], 5);

    let adjustments: Vec<(String, i64, Option<String>)> = ledger(&app, "COUNT-1")
        .await
        .into_iter()
        .filter(|r| r.kind == "adjust")
        .map(|r| (r.location, r.on_hand_delta, r.reason))
        .collect();
    assert_eq!(
        adjustments,
        [
            ("main".to_owned(), -2, Some("damage".to_owned())),
            ("main".to_owned(), 4, Some("found".to_owned())),
            ("main".to_owned(), -8, Some("loss".to_owned())),
            ("cage".to_owned(), 5, Some("found".to_owned())),
        ]
    );

    assert_eq!(refused(adjust(4, "theft", "main").await).await, ["reason"]);
    assert_eq!(
        refused(adjust(-1, "cycle_count", "main").await).await,
        ["counted_quantity"]
    );
    refused(
        app.post(
            &staff,
            "/inventory/adjust",
            json!({"sku": "COUNT-1", "location": "main", "counted_quantity": 1}),
        )
        .await,
    )
    .await;
    assert_eq!(level(&app, "COUNT-1", "main").await, (4, 4));
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_operations_refuse_bad_quantities_unknown_records_and_archived_locations_changing_nothing(
) {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let staff = app.user_with_role("staff").await;
    app.product_with_stock(&admin, "GOOD-1", 10, 0).await;
    create_location(&app, &admin, "closed").await;
    ok(app
        .post(&admin, "/locations/closed/archive", json!({}))
        .await)
    .await;
    let rows_before = ledger_rows(&app).await;
    let events_before = outbox(&app).await.len();
    let too_many = 1_000_000_001i64;

    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "/inventory/receive",
            json!({"sku": "GOOD-1", "quantity": 0}),
            vec!["quantity"],
        ),
        (
            "/inventory/receive",
            json!({"sku": "GOOD-1", "quantity": -5}),
            vec!["quantity"],
        ),
        (
            "/inventory/receive",
            json!({"sku": "GOOD-1", "quantity": too_many}),
            vec!["quantity"],
        ),
        (
            "/inventory/receive",
            json!({"sku": "GOOD-1", "quantity": 1, "reason": ""}),
            vec!["reason"],
        ),
        (
            "/inventory/receive",
            json!({"sku": "NOPE", "quantity": 1}),
            vec!["sku"],
        ),
        (
            "/inventory/receive",
            json!({"sku": "GOOD-1", "location": "nowhere", "quantity": 1}),
            vec!["location"],
        ),
        (
            "/inventory/receive",
            json!({"sku": "GOOD-1", "location": "closed", "quantity": 1}),
            vec!["location"],
        ),
        (
            "/inventory/ship",
            json!({"sku": "GOOD-1", "location": "main", "quantity": 0}),
            vec!["quantity"],
        ),
        (
            "/inventory/ship",
            json!({"sku": "GOOD-1", "location": "main", "quantity": -1}),
            vec!["quantity"],
        ),
        (
            "/inventory/ship",
            json!({"sku": "NOPE", "location": "main", "quantity": 1}),
            vec!["sku"],
        ),
        (
            "/inventory/ship",
            json!({"sku": "GOOD-1", "location": "nowhere", "quantity": 1}),
            vec!["location"],
        ),
        (
            "/inventory/ship",
            json!({"sku": "GOOD-1", "location": "closed", "quantity": 1}),
            vec!["location"],
        ),
        (
            "/inventory/transfer",
            json!({"sku": "GOOD-1", "from_location": "main", "to_location": "closed", "quantity": 0}),
            vec!["quantity"],
        ),
        (
            "/inventory/transfer",
            json!({"sku": "GOOD-1", "from_location": "main", "to_location": "main", "quantity": -3}),
            vec!["quantity", "to_location"],
        ),
        (
            "/inventory/transfer",
            json!({"sku": "NOPE", "from_location": "main", "to_location": "closed", "quantity": 1}),
            vec!["to_location"],
        ),
        (
            "/inventory/transfer",
            json!({"sku": "GOOD-1", "from_location": "nowhere", "to_location": "closed", "quantity": 1}),
            vec!["from_location", "to_location"],
        ),
        (
            "/inventory/transfer",
            json!({"sku": "NOPE", "from_location": "main", "to_location": "main-2", "quantity": 1}),
            vec!["to_location"],
        ),
        (
            "/inventory/adjust",
            json!({"sku": "GOOD-1", "location": "main", "counted_quantity": -1, "reason": "cycle_count"}),
            vec!["counted_quantity"],
        ),
        (
            "/inventory/adjust",
            json!({"sku": "GOOD-1", "location": "main", "counted_quantity": too_many, "reason": "cycle_count"}),
            vec!["counted_quantity"],
        ),
        (
            "/inventory/adjust",
            json!({"sku": "NOPE", "location": "main", "counted_quantity": 1, "reason": "cycle_count"}),
            vec!["sku"],
        ),
        (
            "/inventory/adjust",
            json!({"sku": "GOOD-1", "location": "closed", "counted_quantity": 0, "reason": "cycle_count"}),
            vec!["location"],
        ),
        (
            "/inventory/ship",
            json!({"sku": "GOOD-1", "location": "main", "quantity": "3"}),
            vec!["quantity"],
        ),
    ];
    for (path, body, fields) in cases {
        let response = app.post(&staff, path, body.clone()).await;
        assert_eq!(refused(response).await, fields, "{path} {body}");
    }
    // With both locations good, an unknown sku is the one refused field.
    create_location(&app, &admin, "main-2").await;
    assert_eq!(
        refused(app
            .post(
                &staff,
                "/inventory/transfer",
                json!({"sku": "NOPE", "from_location": "main", "to_location": "main-2", "quantity": 1}),
            )
            .await)
        .await,
        ["sku"]
    );
    // Missing fields and malformed JSON are refused too.
    refused(
        app.post(
            &staff,
            "/inventory/ship",
            json!({"sku": "GOOD-1", "quantity": 1}),
        )
        .await,
    )
    .await;
    let malformed = app
        .http
        .post(app.url("/inventory/receive"))
        .bearer_auth(&staff)
        .header("content-type", "application/json")
        .body("{\"sku\": ")
        .send()
        .await
        .unwrap();
    problem(malformed, StatusCode::BAD_REQUEST).await;

    assert_eq!(ledger_rows(&app).await, rows_before);
    assert_eq!(outbox(&app).await.len(), events_before);
    assert_eq!(level(&app, "GOOD-1", "main").await, (10, 0));
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_may_not_touch_stock_or_locations_and_staff_may_not_change_products_or_locations()
{
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let staff = app.user_with_role("staff").await;
    let (_, customer) = app.customer().await;
    app.product_with_stock(&admin, "PERM-1", 5, 0).await;

    let stock_operations = [
        (
            "/inventory/receive",
            json!({"sku": "PERM-1", "quantity": 1}),
        ),
        (
            "/inventory/ship",
            json!({"sku": "PERM-1", "location": "main", "quantity": 1}),
        ),
        (
            "/inventory/transfer",
            json!({"sku": "PERM-1", "from_location": "main", "to_location": "main", "quantity": 1}),
        ),
        (
            "/inventory/adjust",
            json!({"sku": "PERM-1", "location": "main", "counted_quantity": 5, "reason": "cycle_count"}),
        ),
    ];
    let manager_posts = [
        ("/locations", json!({"code": "bin-9", "name": "Bin 9"})),
        ("/locations/main/archive", json!({})),
        ("/products/PERM-1/archive", json!({})),
    ];
    let manager_patches = [
        ("/locations/main", json!({"name": "Mine"})),
        ("/products/PERM-1", json!({"name": "Mine"})),
    ];
    let staff_reads = ["/inventory", "/movements", "/locations"];

    for (path, body) in stock_operations.iter().chain(manager_posts.iter()) {
        problem(
            app.post(&customer, path, body.clone()).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    for (path, body) in &manager_patches {
        problem(
            app.patch(&customer, path, body.clone()).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(
            app.patch(&staff, path, body.clone()).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    for path in staff_reads {
        problem(app.get(&customer, path).await, StatusCode::FORBIDDEN).await;
        ok(app.get(&staff, path).await).await;
        let anonymous = app.http.get(app.url(path)).send().await.unwrap();
        problem(anonymous, StatusCode::UNAUTHORIZED).await;
    }
    for (path, body) in &manager_posts {
        problem(
            app.post(&staff, path, body.clone()).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    assert_eq!(ledger_rows(&app).await, 1, "only the setup's receipt");
    let product = ok(app.get(&customer, "/products/PERM-1").await).await;
    assert_eq!(product["name"], "Product PERM-1");
    assert_eq!(product["archived"], false);

    // Staff may do every stock operation.
    let staff_ok = [
        (
            "/inventory/receive",
            json!({"sku": "PERM-1", "quantity": 1}),
        ),
        (
            "/inventory/ship",
            json!({"sku": "PERM-1", "location": "main", "quantity": 1}),
        ),
        (
            "/inventory/adjust",
            json!({"sku": "PERM-1", "location": "main", "counted_quantity": 4, "reason": "cycle_count"}),
        ),
    ];
    for (path, body) in staff_ok {
        ok(app.post(&staff, path, body).await).await;
    }

    // Every new route is documented, with its security.
    let document: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/products/{sku}", "patch"),
        ("/products/{sku}/archive", "post"),
        ("/locations", "post"),
        ("/locations", "get"),
        ("/locations/{code}", "patch"),
        ("/locations/{code}/archive", "post"),
        ("/inventory", "get"),
        ("/inventory/receive", "post"),
        ("/inventory/ship", "post"),
        ("/inventory/transfer", "post"),
        ("/inventory/adjust", "post"),
        ("/movements", "get"),
    ] {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        assert_eq!(
            operation["security"],
            json!([{"bearer": []}]),
            "{method} {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_levels_are_filtered_by_sku_location_and_low_stock_and_paged_by_cursor() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let staff = app.user_with_role("staff").await;
    create_location(&app, &admin, "backroom").await;
    app.product_with_stock(&admin, "LVL-1", 10, 5).await;
    app.product_with_stock(&admin, "LVL-2", 3, 5).await;
    app.product_with_stock(&admin, "LVL-3", 0, 0).await;
    ok(app
        .post(
            &staff,
            "/inventory/receive",
            json!({"sku": "LVL-1", "location": "backroom", "quantity": 2}),
        )
        .await)
    .await;

    let rows = |page: &Value| -> Vec<(String, String, i64)> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["sku"].as_str().unwrap().to_owned(),
                    l["location"].as_str().unwrap().to_owned(),
                    l["available"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let all = ok(app.get(&staff, "/inventory").await).await;
    assert_eq!(
        rows(&all),
        [
            ("LVL-1".to_owned(), "backroom".to_owned(), 2),
            ("LVL-1".to_owned(), "main".to_owned(), 10),
            ("LVL-2".to_owned(), "main".to_owned(), 3),
        ]
    );
    assert_eq!(all["items"][0]["on_hand"], 2);
    assert_eq!(all["items"][0]["reserved"], 0);
    assert_eq!(
        rows(&ok(app.get(&staff, "/inventory?sku=LVL-1").await).await).len(),
        2
    );
    assert_eq!(
        rows(&ok(app.get(&staff, "/inventory?location=backroom").await).await),
        [("LVL-1".to_owned(), "backroom".to_owned(), 2)]
    );
    assert_eq!(
        rows(&ok(app.get(&staff, "/inventory?low_stock=true").await).await),
        [("LVL-2".to_owned(), "main".to_owned(), 3)]
    );
    assert_eq!(
        rows(
            &ok(app
                .get(&staff, "/inventory?low_stock=false&location=main")
                .await)
            .await
        ),
        [("LVL-1".to_owned(), "main".to_owned(), 10)]
    );

    let first = ok(app.get(&staff, "/inventory?limit=2").await).await;
    assert_eq!(rows(&first).len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = ok(app
        .get(&staff, &format!("/inventory?limit=2&cursor={cursor}"))
        .await)
    .await;
    assert_eq!(rows(&second), [("LVL-2".to_owned(), "main".to_owned(), 3)]);
    assert!(second["next_cursor"].is_null());

    assert_eq!(
        refused(app.get(&staff, "/inventory?limit=0").await).await,
        ["limit"]
    );
    assert_eq!(
        refused(app.get(&staff, "/inventory?cursor=%%%").await).await,
        ["cursor"]
    );
    assert_eq!(
        refused(app.get(&staff, "/inventory?low_stock=maybe").await).await,
        ["query"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn movements_are_listed_newest_first_and_filtered_by_sku_location_kind_actor_and_time() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let receiver = app.user_with_role("staff").await;
    let mover = app.user_with_role("staff").await;
    create_location(&app, &admin, "backroom").await;
    app.product_with_stock(&admin, "LOG-1", 0, 0).await;
    app.product_with_stock(&admin, "LOG-2", 0, 0).await;
    ok(app
        .post(
            &receiver,
            "/inventory/receive",
            json!({"sku": "LOG-1", "quantity": 10, "reason": "PO-17"}),
        )
        .await)
    .await;
    ok(app
        .post(
            &receiver,
            "/inventory/receive",
            json!({"sku": "LOG-2", "quantity": 1}),
        )
        .await)
    .await;
    ok(app
        .post(&mover, "/inventory/transfer",
              json!({"sku": "LOG-1", "from_location": "main", "to_location": "backroom", "quantity": 3}))
        .await)
    .await;
    ok(app
        .post(
            &receiver,
            "/inventory/ship",
            json!({"sku": "LOG-1", "location": "backroom", "quantity": 1}),
        )
        .await)
    .await;

    let kinds = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                format!(
                    "{} {} {}",
                    m["sku"].as_str().unwrap(),
                    m["location"].as_str().unwrap(),
                    m["kind"].as_str().unwrap()
                )
            })
            .collect()
    };
    let all = ok(app.get(&receiver, "/movements").await).await;
    assert_eq!(
        kinds(&all),
        [
            "LOG-1 backroom ship",
            "LOG-1 backroom transfer_in",
            "LOG-1 main transfer_out",
            "LOG-2 main receive",
            "LOG-1 main receive",
        ]
    );
    let receipt = &all["items"][4];
    assert_eq!(receipt["on_hand_delta"], 10);
    assert_eq!(receipt["reserved_delta"], 0);
    assert_eq!(receipt["reason"], "PO-17");
    assert!(receipt.get("order_id").is_none());
    assert_eq!(
        all["items"][1]["correlation_id"],
        all["items"][2]["correlation_id"]
    );

    let mover_id = all["items"][1]["actor_id"].as_str().unwrap();
    assert_ne!(Some(mover_id), all["items"][0]["actor_id"].as_str());
    assert_eq!(
        kinds(
            &ok(app
                .get(&receiver, &format!("/movements?actor={mover_id}"))
                .await)
            .await
        ),
        ["LOG-1 backroom transfer_in", "LOG-1 main transfer_out"]
    );
    assert_eq!(
        kinds(&ok(app.get(&receiver, "/movements?sku=LOG-2").await).await),
        ["LOG-2 main receive"]
    );
    assert_eq!(
        kinds(
            &ok(app
                .get(&receiver, "/movements?location=backroom&kind=ship")
                .await)
            .await
        ),
        ["LOG-1 backroom ship"]
    );
    assert_eq!(
        kinds(
            &ok(app
                .get(&receiver, "/movements?sku=LOG-1&kind=receive")
                .await)
            .await
        ),
        ["LOG-1 main receive"]
    );

    // Time windows: from is inclusive, to exclusive, in any RFC 3339 offset.
    let newest = all["items"][0]["created_at"].as_str().unwrap().to_owned();
    let window =
        |from: &str, to: &str| format!("/movements?from={}&to={}", urlencode(from), urlencode(to));
    let everything = ok(app
        .get(
            &receiver,
            &window("2000-01-01T00:00:00Z", "2999-01-01T00:00:00+02:00"),
        )
        .await)
    .await;
    assert_eq!(kinds(&everything).len(), 5);
    let from_newest = ok(app
        .get(&receiver, &window(&newest, "2999-01-01T00:00:00Z"))
        .await)
    .await;
    assert_eq!(kinds(&from_newest)[0], "LOG-1 backroom ship");
    let before_oldest = ok(app
        .get(
            &receiver,
            &window("2000-01-01T00:00:00Z", "2001-01-01T00:00:00Z"),
        )
        .await)
    .await;
    assert!(kinds(&before_oldest).is_empty());

    let first = ok(app.get(&receiver, "/movements?limit=2").await).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = ok(app
        .get(&receiver, &format!("/movements?limit=2&cursor={cursor}"))
        .await)
    .await;
    let cursor = second["next_cursor"].as_str().unwrap();
    let third = ok(app
        .get(&receiver, &format!("/movements?limit=2&cursor={cursor}"))
        .await)
    .await;
    let paged: Vec<String> = [first, second, third.clone()]
        .iter()
        .flat_map(kinds)
        .collect();
    assert_eq!(paged, kinds(&all));
    assert!(third["next_cursor"].is_null());

    assert_eq!(
        refused(app.get(&receiver, "/movements?from=2026-13-01").await).await,
        ["from"]
    );
    assert_eq!(
        refused(app.get(&receiver, "/movements?to=yesterday").await).await,
        ["to"]
    );
    assert_eq!(
        refused(app.get(&receiver, "/movements?kind=steal").await).await,
        ["kind"]
    );
    assert_eq!(
        refused(app.get(&receiver, "/movements?actor=bob").await).await,
        ["actor"]
    );
    assert_eq!(
        refused(app.get(&receiver, "/movements?cursor=abc").await).await,
        ["cursor"]
    );
}

fn urlencode(raw: &str) -> String {
    raw.replace('+', "%2B").replace(':', "%3A")
}

/// A small deterministic generator, so a failing race replays the same mix.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn staff_receiving_adjusting_and_transferring_during_a_flood_of_orders_keep_the_ledger_equal_to_stock(
) {
    const SKUS: [&str; 3] = ["RACE-1", "RACE-2", "RACE-3"];
    const LOCATIONS: [&str; 2] = ["main", "overflow"];
    const ORDERS: usize = 400;
    /// Each staff member does at least this many operations, and goes on
    /// until every order is decided.
    const MIN_OPERATIONS_PER_STAFF: usize = 30;

    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    create_location(&app, &admin, "overflow").await;
    for sku in SKUS {
        app.product_with_stock(&admin, sku, 150, 10).await;
    }
    let mut staff = Vec::new();
    for _ in 0..3 {
        staff.push(app.user_with_role("staff").await);
    }
    let mut customers = Vec::new();
    for _ in 0..8 {
        customers.push(app.customer().await.1);
    }

    // Orders for the same products, a fifth of them for two, placed 8 at a
    // time so they keep arriving while staff work.
    let mut dice = Dice(0x2545_f491_4f6c_dd1d);
    let orders: Vec<(String, Value)> = (0..ORDERS)
        .map(|i| {
            let first = SKUS[dice.roll(3) as usize];
            let mut items = vec![json!({"sku": first, "quantity": dice.roll(2) + 1})];
            if i % 5 == 0 {
                let second = SKUS[dice.roll(3) as usize];
                items.push(json!({"sku": second, "quantity": 1}));
            }
            (customers[i % customers.len()].clone(), Value::Array(items))
        })
        .collect();
    let all_decided = AtomicBool::new(false);
    let placing_and_deciding = async {
        let ids: Vec<Uuid> = futures::stream::iter(orders)
            .map(|(token, items)| {
                let app = &app;
                async move { app.place(&token, items).await }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        app.wait_decided(ORDERS as i64).await;
        all_decided.store(true, Ordering::SeqCst);
        ids
    };

    let working = futures::future::join_all(staff.iter().enumerate().map(|(n, token)| {
        let (app, all_decided) = (&app, &all_decided);
        let mut dice = Dice(0x9e37_79b9_7f4a_7c15 + n as u64);
        async move {
            let mut outcomes: HashMap<(&str, u16), usize> = HashMap::new();
            let mut i = 0;
            while i < MIN_OPERATIONS_PER_STAFF || !all_decided.load(Ordering::SeqCst) {
                i += 1;
                let sku = SKUS[dice.roll(3) as usize];
                let here = LOCATIONS[dice.roll(2) as usize];
                let there = LOCATIONS.iter().find(|l| **l != here).unwrap();
                let (path, body) = match (i + n) % 3 {
                    0 => (
                        "/inventory/receive",
                        json!({"sku": sku, "location": here, "quantity": dice.roll(30) + 1}),
                    ),
                    1 => (
                        "/inventory/transfer",
                        json!({"sku": sku, "from_location": here, "to_location": there,
                               "quantity": dice.roll(8) + 1}),
                    ),
                    _ => (
                        "/inventory/adjust",
                        json!({"sku": sku, "location": here, "counted_quantity": dice.roll(100),
                               "reason": "cycle_count"}),
                    ),
                };
                let response = app.post(token, path, body).await;
                let status = response.status();
                // 409 is the honest answer when orders got there first.
                assert!(
                    status == StatusCode::OK || status == StatusCode::CONFLICT,
                    "{path}: {status} {:?}",
                    response.text().await
                );
                *outcomes.entry((path, status.as_u16())).or_default() += 1;
            }
            outcomes
        }
    }));
    let (ids, outcomes) = futures::join!(placing_and_deciding, working);
    assert_eq!(ids.len(), ORDERS);

    let mut succeeded: HashMap<&str, usize> = HashMap::new();
    for outcome in outcomes {
        for ((path, status), count) in outcome {
            if status == 200 {
                *succeeded.entry(path).or_default() += count;
            }
        }
    }
    for path in [
        "/inventory/receive",
        "/inventory/transfer",
        "/inventory/adjust",
    ] {
        assert!(
            succeeded.get(path).copied().unwrap_or(0) > 0,
            "some {path} succeeded: {succeeded:?}"
        );
    }

    let pool = &app.db.pool;
    // How much the two sides really overlapped, for whoever reads the output:
    // staff rows written between the first and the last reservation.
    let interleaved: i64 = sqlx::query_scalar(
        "select count(*) from stock_movements
         where actor_id is not null
           and id > (select min(id) from stock_movements where kind = 'reserve')
           and id < (select max(id) from stock_movements where kind = 'reserve')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    println!("staff operations that succeeded: {succeeded:?}; {interleaved} staff ledger rows fell between reservations");
    let pending: i64 = sqlx::query_scalar("select count(*) from orders where status = 'pending'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    let confirmed: i64 =
        sqlx::query_scalar("select count(*) from orders where status = 'confirmed'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(confirmed > 0, "some orders were confirmed");

    assert_eq!(
        app.ledger_drift().await,
        0,
        "the ledger sums to the stock levels"
    );
    let negative: i64 = sqlx::query_scalar(
        "select count(*) from stock_levels where on_hand < 0 or reserved < 0 or on_hand - reserved < 0",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(negative, 0, "nothing went negative");

    // What confirmed orders hold is exactly what the ledger reserved, and
    // exactly what they asked for.
    let (allocated, ledger_reserved, levels_reserved, ordered): (i64, i64, i64, i64) =
        sqlx::query_as(
            "select
           (select coalesce(sum(a.quantity), 0)::int8 from order_allocations a
              join orders o on o.id = a.order_id where o.status = 'confirmed'),
           (select coalesce(sum(reserved_delta), 0)::int8 from stock_movements
              where kind in ('reserve', 'release')),
           (select coalesce(sum(reserved), 0)::int8 from stock_levels),
           (select coalesce(sum(l.quantity), 0)::int8 from order_lines l
              join orders o on o.id = l.order_id where o.status = 'confirmed')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(allocated, ledger_reserved);
    assert_eq!(levels_reserved, ledger_reserved);
    assert_eq!(ordered, allocated);

    // Every staff row names its actor; every transfer is two legs that cancel.
    let unattributed: i64 = sqlx::query_scalar(
        "select count(*) from stock_movements
         where kind in ('receive', 'adjust', 'transfer_in', 'transfer_out') and actor_id is null",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(unattributed, 0);
    let broken_transfers: i64 = sqlx::query_scalar(
        "select count(*) from (
            select correlation_id from stock_movements where kind like 'transfer%'
            group by correlation_id having count(*) <> 2 or sum(on_hand_delta) <> 0) t",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(broken_transfers, 0);

    // The events describing it all reach the stream.
    testkit::eventually(Duration::from_secs(30), "the outbox to drain", || async {
        let left: i64 = sqlx::query_scalar("select count(*) from outbox")
            .fetch_one(pool)
            .await
            .ok()?;
        (left == 0).then_some(())
    })
    .await;
}
