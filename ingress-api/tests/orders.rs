//! The order pipeline end to end: HTTP, JetStream, the processor, Postgres.

mod support;

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::TestApp;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_orders_for_fifty_units_confirm_exactly_fifty() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "HOT-1", 50, 0).await;
    let mut customers = Vec::new();
    for _ in 0..10 {
        customers.push(app.customer().await.1);
    }

    let placements = (0..200).map(|i| {
        let token = customers[i % customers.len()].clone();
        let app = &app;
        async move {
            app.place(&token, json!([{"sku": "HOT-1", "quantity": 1}]))
                .await
        }
    });
    let ids: Vec<Uuid> = futures::future::join_all(placements).await;
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        200
    );
    app.wait_decided(200).await;

    let counts: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "select status, reason, count(*) from orders group by status, reason order by status",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        counts,
        vec![
            ("confirmed".into(), None, 50),
            ("rejected".into(), Some("insufficient_stock".into()), 150)
        ]
    );
    assert_eq!(app.stock("HOT-1").await, (50, 50));
    assert_eq!(app.ledger_drift().await, 0);

    // Every customer sees their own outcomes through the API.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let token = &customers[i % customers.len()];
        let body = app.order(token, *id).await;
        *seen
            .entry(body["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
        if body["status"] == "rejected" {
            assert_eq!(body["reason"], "insufficient_stock");
        }
    }
    assert_eq!(seen["confirmed"], 50);
    assert_eq!(seen["rejected"], 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_product_order_short_on_one_line_reserves_nothing_for_any_line() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "PLENTY", 100, 0).await;
    app.product_with_stock(&admin, "SCARCE", 1, 0).await;
    let (_, customer) = app.customer().await;

    let id = app
        .place(
            &customer,
            json!([{"sku": "PLENTY", "quantity": 10}, {"sku": "SCARCE", "quantity": 2}]),
        )
        .await;
    app.wait_decided(1).await;

    let body = app.order(&customer, id).await;
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["reason"], "insufficient_stock");
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    assert_eq!(app.stock("PLENTY").await, (100, 0));
    assert_eq!(app.stock("SCARCE").await, (1, 0));
    let reservations: i64 =
        sqlx::query_scalar("select count(*) from stock_movements where kind = 'reserve'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(reservations, 0);

    // The same order that fits is confirmed on both lines.
    let id = app
        .place(
            &customer,
            json!([{"sku": "PLENTY", "quantity": 10}, {"sku": "SCARCE", "quantity": 1}]),
        )
        .await;
    app.wait_decided(2).await;
    let body = app.order(&customer, id).await;
    assert_eq!(body["status"], "confirmed");
    assert_eq!(app.stock("PLENTY").await, (100, 10));
    assert_eq!(app.stock("SCARCE").await, (1, 1));
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_and_body_give_one_order_and_another_body_is_refused() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "IDEM", 10, 0).await;
    let (_, customer) = app.customer().await;
    let body = json!({"items": [{"sku": "IDEM", "quantity": 3}]});

    let send = |body: Value, key: &'static str| {
        let app = &app;
        let customer = customer.clone();
        async move {
            app.http
                .post(app.url("/orders"))
                .bearer_auth(customer)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // Two concurrent first attempts and one retry after the decision.
    let (first, second) = tokio::join!(send(body.clone(), "key-1"), send(body.clone(), "key-1"));
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["order_id"], second["order_id"]);
    app.wait_decided(1).await;
    let third = send(body.clone(), "key-1").await;
    assert_eq!(third.status(), StatusCode::ACCEPTED);
    let third: Value = third.json().await.unwrap();
    assert_eq!(third["order_id"], first["order_id"]);
    assert_eq!(third["status"], "confirmed");

    let other = send(json!({"items": [{"sku": "IDEM", "quantity": 4}]}), "key-1").await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.headers()["content-type"], "application/problem+json");

    let orders: i64 = sqlx::query_scalar("select count(*) from orders")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(orders, 1);
    assert_eq!(app.stock("IDEM").await, (10, 3));
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_body_under_a_queued_key_is_refused_before_any_decision() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "Q-1", 10, 0).await;
    let (_, customer) = app.customer().await;
    let send = |sku: &'static str| {
        let app = &app;
        let customer = customer.clone();
        async move {
            app.http
                .post(app.url("/orders"))
                .bearer_auth(customer)
                .header("Idempotency-Key", "queued-key")
                .json(&json!({"items": [{"sku": sku, "quantity": 1}]}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(send("Q-1").await.status(), StatusCode::ACCEPTED);
    // Another first sku routes to another partition; the key still names the
    // queued order, whose body differs.
    assert_eq!(send("Q-2").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(send("Q-1").await.status(), StatusCode::ACCEPTED);
    assert_eq!(app.queued().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_order_reads_pending_while_no_processor_runs_and_is_decided_once_one_starts() {
    let mut app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "WAIT-1", 5, 0).await;
    let (_, customer) = app.customer().await;
    let id = app
        .place(&customer, json!([{"sku": "WAIT-1", "quantity": 2}]))
        .await;

    let response = app.get(&customer, &format!("/orders/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    assert_eq!(body["items"], json!([{"sku": "WAIT-1", "quantity": 2}]));

    // The list shows it too, once the pending record is written.
    let listed = testkit::eventually(
        std::time::Duration::from_secs(10),
        "the pending order in the list",
        || {
            let app = &app;
            let customer = customer.clone();
            async move {
                let page: Value = app.get(&customer, "/orders").await.json().await.ok()?;
                let items = page["items"].as_array()?.clone();
                (!items.is_empty()).then_some(items)
            }
        },
    )
    .await;
    assert_eq!(listed[0]["order_id"], json!(id));
    assert_eq!(listed[0]["status"], "pending");

    app.start_processor().await;
    app.wait_decided(1).await;
    let body = app.order(&customer, id).await;
    assert_eq!(body["status"], "confirmed");
    assert!(body["decided_at"].is_string());
    assert_eq!(app.stock("WAIT-1").await, (5, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_cannot_see_another_customers_order_but_staff_can() {
    let mut app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "MINE", 5, 0).await;
    let (_, alice) = app.customer().await;
    let (_, bob) = app.customer().await;
    let staff = app.user_with_role("staff").await;
    let id = app
        .place(&alice, json!([{"sku": "MINE", "quantity": 1}]))
        .await;

    // Pending (from the queue) and decided (from the database) alike.
    for round in 0..2 {
        let response = app.get(&bob, &format!("/orders/{id}")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "round {round}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert_eq!(
            app.get(&staff, &format!("/orders/{id}")).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            app.get(&alice, &format!("/orders/{id}")).await.status(),
            StatusCode::OK
        );
        if round == 0 {
            app.start_processor().await;
            app.wait_decided(1).await;
        }
    }
    let page: Value = app.get(&bob, "/orders").await.json().await.unwrap();
    assert_eq!(page["items"], json!([]));
    let page: Value = app.get(&staff, "/orders").await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let unknown = app
        .get(&alice, &format!("/orders/{}", Uuid::new_v4()))
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after_and_accepts_nothing_half_way() {
    let app = TestApp::start_with(&[("ORDERFLOW_ORDERS_MAX_MSGS", "2")], false).await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "FULL", 5, 0).await;
    let (_, customer) = app.customer().await;
    app.place(&customer, json!([{"sku": "FULL", "quantity": 1}]))
        .await;
    app.place(&customer, json!([{"sku": "FULL", "quantity": 1}]))
        .await;

    let response = app
        .post(
            &customer,
            "/orders",
            json!({"items": [{"sku": "FULL", "quantity": 1}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(app.queued().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcome_and_stock_events_are_published_once_each_with_unique_ids() {
    use futures::StreamExt;
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "EVT", 3, 1).await;
    let (_, customer) = app.customer().await;
    for _ in 0..4 {
        app.place(&customer, json!([{"sku": "EVT", "quantity": 1}]))
            .await;
    }
    app.wait_decided(4).await;

    // The outbox drains into EVENTS; read everything back.
    let client = async_nats::connect(testkit::nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(app.ns.naming.events_stream()).await.unwrap();
    testkit::wait_for_empty_outbox(&app.db.pool).await;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut events = Vec::new();
    let total = stream.clone().info().await.unwrap().state.messages;
    while (events.len() as u64) < total {
        let message = messages.next().await.unwrap().unwrap();
        let body: Value = serde_json::from_slice(&message.payload).unwrap();
        events.push(body);
    }
    let ids: std::collections::HashSet<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(count("order.confirmed"), 3);
    assert_eq!(count("order.rejected"), 1);
    // 3 available against a threshold of 1: low once when it went 3 -> 1 or
    // below, and only once however many orders followed.
    assert_eq!(count("stock.low"), 1);
    // The receipt took it from 0 (low) to 3: recovered once.
    assert_eq!(count("stock.recovered"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_from_a_user_missing_from_the_database_is_decided_and_blocks_nothing() {
    // A valid token whose user the database does not know, as after restoring
    // an older backup: the order is still decided, and the orders queued
    // behind it in the same partition are too.
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "GHOST", 5, 0).await;
    let keys = ingress_api::auth::token::TokenKeys::new(
        app.settings.jwt_secret.as_bytes(),
        std::time::Duration::from_secs(60),
    );
    let ghost = keys
        .issue(Uuid::now_v7(), orderflow_core::domain::Role::Customer)
        .unwrap();
    let (_, customer) = app.customer().await;
    let ghost_order = app
        .place(&ghost, json!([{"sku": "GHOST", "quantity": 1}]))
        .await;
    let next_order = app
        .place(&customer, json!([{"sku": "GHOST", "quantity": 1}]))
        .await;
    app.wait_decided(2).await;
    let body = app.order(&ghost, ghost_order).await;
    assert_eq!(body["status"], "confirmed");
    let body = app.order(&customer, next_order).await;
    assert_eq!(body["status"], "confirmed");
    assert_eq!(app.stock("GHOST").await, (5, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_decided_while_its_product_is_being_archived_sees_the_archive() {
    // The processor locks the product row before deciding, so an archive
    // still in flight holds the batch until it commits, and the order is
    // rejected rather than confirmed against the old state.
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "GOING", 5, 0).await;
    let (_, customer) = app.customer().await;

    let mut archive = app.db.pool.begin().await.unwrap();
    sqlx::query("update products set archived_at = now() where sku = 'GOING'")
        .execute(&mut *archive)
        .await
        .unwrap();
    let id = app
        .place(&customer, json!([{"sku": "GOING", "quantity": 1}]))
        .await;
    let pool = app.db.pool.clone();
    testkit::eventually(
        std::time::Duration::from_secs(20),
        "the batch to wait for the archive",
        || {
            let pool = pool.clone();
            async move {
                let waiting: i64 = sqlx::query_scalar(
                    "select count(*) from pg_stat_activity
                 where datname = current_database() and wait_event_type = 'Lock'",
                )
                .fetch_one(&pool)
                .await
                .ok()?;
                (waiting > 0).then_some(())
            }
        },
    )
    .await;
    archive.commit().await.unwrap();

    app.wait_decided(1).await;
    let body = app.order(&customer, id).await;
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["reason"], "product_archived");
    assert_eq!(app.stock("GOING").await, (5, 0));
}
