//! Bad input gets the right status and a problem+json naming the field and
//! the limit, and changes nothing.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{problem, TestApp};

fn field_errors(body: &Value) -> Vec<(String, Option<i64>)> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["limit"].as_i64()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_orders_are_refused_with_the_field_and_limit_and_nothing_is_queued() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "OK-1", 10, 0).await;
    let (_, customer) = app.customer().await;
    let raw = |body: &'static str| {
        let app = &app;
        let customer = customer.clone();
        async move {
            app.http
                .post(app.url("/orders"))
                .bearer_auth(customer)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };

    let body = problem(raw("{\"items\": [").await, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["type"], "/problems/malformed-json");

    let body = problem(
        raw(r#"{"items": [{"sku": "OK-1", "quantity": 1}], "coupon": "FREE"}"#).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("coupon"));

    let body = problem(
        raw(r#"{"items": [{"sku": "OK-1", "quantity": 0}, {"sku": "OK-1", "quantity": 10001}]}"#)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        field_errors(&body),
        vec![
            ("items[0].quantity".to_owned(), Some(1)),
            ("items[1].quantity".to_owned(), Some(10_000))
        ]
    );

    let body = problem(
        raw(r#"{"items": [{"sku": "OK-1", "quantity": 100000000000000000000000}]}"#).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(field_errors(&body)[0].0, "items[0].quantity");

    let body = problem(
        raw(r#"{"items": [{"sku": "no spaces allowed", "quantity": 1}]}"#).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(field_errors(&body)[0].0, "items[0].sku");

    let body = problem(
        raw(r#"{"items": []}"#).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(field_errors(&body), vec![("items".to_owned(), Some(1))]);

    let too_many: Vec<Value> = (0..101)
        .map(|_| json!({"sku": "OK-1", "quantity": 1}))
        .collect();
    let body = problem(
        app.post(&customer, "/orders", json!({ "items": too_many }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(field_errors(&body), vec![("items".to_owned(), Some(100))]);

    let huge = format!(
        r#"{{"items": [{{"sku": "{}", "quantity": 1}}]}}"#,
        "x".repeat(70 * 1024)
    );
    let response = app
        .http
        .post(app.url("/orders"))
        .bearer_auth(&customer)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let body = problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(
        field_errors(&body),
        vec![("body".to_owned(), Some(64 * 1024))]
    );

    let response = app
        .http
        .post(app.url("/orders"))
        .bearer_auth(&customer)
        .body(r#"{"items": [{"sku": "OK-1", "quantity": 1}]}"#)
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    let response = app
        .http
        .post(app.url("/orders"))
        .bearer_auth(&customer)
        .header("Idempotency-Key", "x".repeat(256))
        .json(&json!({"items": [{"sku": "OK-1", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        field_errors(&body),
        vec![("Idempotency-Key".to_owned(), Some(255))]
    );

    let response = app
        .http
        .post(app.url("/orders"))
        .json(&json!({"items": [{"sku": "OK-1", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    problem(response, StatusCode::UNAUTHORIZED).await;

    let response = app
        .http
        .post(app.url("/orders"))
        .bearer_auth("not.a.token")
        .json(&json!({"items": [{"sku": "OK-1", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNAUTHORIZED).await;

    // None of it reached the queue or the database.
    assert_eq!(app.queued().await, 0);
    let orders: i64 = sqlx::query_scalar("select count(*) from orders")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(orders, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_register_once_log_in_with_the_right_password_and_roles_are_enforced() {
    let app = TestApp::start_with(&[], false).await;
    let register = |email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/auth/register"))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    let created = register("Someone@Example.com", "long-enough-pw").await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let body: Value = created.json().await.unwrap();
    assert_eq!(body["email"], "someone@example.com");
    assert_eq!(body["role"], "customer");
    problem(
        register("someone@example.com", "another-password").await,
        StatusCode::CONFLICT,
    )
    .await;
    let body = problem(
        register("not-an-email", "short").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        field_errors(&body),
        vec![
            ("email".to_owned(), Some(254)),
            ("password".to_owned(), Some(8))
        ]
    );

    let wrong = app
        .http
        .post(app.url("/auth/login"))
        .json(&json!({"email": "someone@example.com", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    problem(wrong, StatusCode::UNAUTHORIZED).await;
    let customer = app.login("someone@example.com", "long-enough-pw").await;

    let product =
        json!({"sku": "ROLE-1", "name": "Role test", "price_cents": 5, "low_stock_threshold": 0});
    problem(
        app.post(&customer, "/products", product.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let staff = app.user_with_role("staff").await;
    problem(
        app.post(&staff, "/products", product.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let manager = app.user_with_role("manager").await;
    assert_eq!(
        app.post(&manager, "/products", product.clone())
            .await
            .status(),
        StatusCode::CREATED
    );
    problem(
        app.post(&manager, "/products", product).await,
        StatusCode::CONFLICT,
    )
    .await;

    let receipt = json!({"sku": "ROLE-1", "quantity": 5});
    problem(
        app.post(&customer, "/inventory/receive", receipt.clone())
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        app.post(&staff, "/inventory/receive", receipt)
            .await
            .status(),
        StatusCode::OK
    );
    let body = problem(
        app.post(
            &staff,
            "/inventory/receive",
            json!({"sku": "ROLE-1", "quantity": 0}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(field_errors(&body)[0].0, "quantity");
    let body = problem(
        app.post(
            &staff,
            "/inventory/receive",
            json!({"sku": "NOPE", "quantity": 1}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(field_errors(&body)[0].0, "sku");
    let body = problem(
        app.post(
            &staff,
            "/inventory/receive",
            json!({"sku": "ROLE-1", "location": "nowhere", "quantity": 1}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(field_errors(&body)[0].0, "location");

    // Anyone signed in reads the catalogue with its stock.
    let detail: Value = app
        .get(&customer, "/products/ROLE-1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["on_hand"], 5);
    assert_eq!(detail["available"], 5);
    assert_eq!(detail["locations"][0]["location"], "main");
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_are_searched_filtered_and_paged_by_cursor() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    for (sku, name, category) in [
        ("BOLT-1", "Steel bolt", "hardware"),
        ("BOLT-2", "Brass bolt", "hardware"),
        ("NUT-1", "Steel nut", "hardware"),
        ("TAPE-1", "Duct tape 100%", "supplies"),
    ] {
        let response = app
            .post(
                &admin,
                "/products",
                json!({"sku": sku, "name": name, "price_cents": 10,
                                             "category": category, "low_stock_threshold": 2}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    app.post(
        &admin,
        "/inventory/receive",
        json!({"sku": "BOLT-1", "quantity": 10}),
    )
    .await;

    let skus = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sku"].as_str().unwrap().to_owned())
            .collect()
    };
    let page: Value = app
        .get(&admin, "/products?search=steel")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skus(&page), ["BOLT-1", "NUT-1"]);
    let page: Value = app
        .get(&admin, "/products?search=100%25")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skus(&page), ["TAPE-1"]);
    let page: Value = app
        .get(&admin, "/products?category=supplies")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skus(&page), ["TAPE-1"]);
    let page: Value = app
        .get(&admin, "/products?low_stock=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skus(&page), ["BOLT-2", "NUT-1", "TAPE-1"]);

    let first: Value = app
        .get(&admin, "/products?limit=3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skus(&first), ["BOLT-1", "BOLT-2", "NUT-1"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .get(&admin, &format!("/products?limit=3&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skus(&second), ["TAPE-1"]);
    assert!(second["next_cursor"].is_null());
    problem(
        app.get(&admin, "/products?limit=0").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        app.get(&admin, "/products?cursor=%%%").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    problem(
        app.get(&admin, "/products/UNKNOWN").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_answer_health_readiness_metrics_and_the_openapi_document() {
    let app = TestApp::start_with(&[], false).await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready, json!({"broker": "connected", "database": "up"}));

    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "MET-1", 1, 0).await;
    let (_, customer) = app.customer().await;
    app.place(&customer, json!([{"sku": "MET-1", "quantity": 1}]))
        .await;
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("orderflow_orders_accepted_total"),
        "{metrics}"
    );
    assert!(metrics.contains(r#"route="/orders""#), "{metrics}");

    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/orders",
        "/orders/{order_id}",
        "/products",
        "/inventory/receive",
        "/auth/login",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}
