//! Every endpoint checks the role the contract gives it: each role below the
//! one required is refused with 403, and a request without a token with 401.
//! The bodies are well-formed, so what refuses them is the role check.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::TestApp;
use uuid::Uuid;

const ROLES: [&str; 4] = ["customer", "staff", "manager", "admin"];

/// (method, path, body, the least role allowed)
fn endpoints(order_id: Uuid, user_id: Uuid) -> Vec<(Method, String, Value, &'static str)> {
    let sku = json!({"sku": "PERM-1", "quantity": 1});
    vec![
        (
            Method::POST,
            "/products".into(),
            json!({"sku": "PERM-2", "name": "n", "price_cents": 1, "low_stock_threshold": 0}),
            "manager",
        ),
        (
            Method::PATCH,
            "/products/PERM-1".into(),
            json!({"name": "renamed"}),
            "manager",
        ),
        (
            Method::POST,
            "/products/PERM-1/archive".into(),
            json!({}),
            "manager",
        ),
        (
            Method::POST,
            "/locations".into(),
            json!({"code": "perm-loc", "name": "n"}),
            "manager",
        ),
        (
            Method::PATCH,
            "/locations/main".into(),
            json!({"name": "Main"}),
            "manager",
        ),
        (
            Method::POST,
            "/locations/main/archive".into(),
            json!({}),
            "manager",
        ),
        (Method::GET, "/locations".into(), Value::Null, "staff"),
        (
            Method::POST,
            "/inventory/receive".into(),
            sku.clone(),
            "staff",
        ),
        (
            Method::POST,
            "/inventory/ship".into(),
            json!({"sku": "PERM-1", "location": "main", "quantity": 1}),
            "staff",
        ),
        (
            Method::POST,
            "/inventory/transfer".into(),
            json!({"sku": "PERM-1", "from_location": "main", "to_location": "main", "quantity": 1}),
            "staff",
        ),
        (
            Method::POST,
            "/inventory/adjust".into(),
            json!({"sku": "PERM-1", "location": "main", "counted_quantity": 1, "reason": "cycle_count"}),
            "staff",
        ),
        (Method::GET, "/inventory".into(), Value::Null, "staff"),
        (Method::GET, "/movements".into(), Value::Null, "staff"),
        (Method::GET, "/alerts".into(), Value::Null, "staff"),
        (Method::GET, "/dashboard".into(), Value::Null, "staff"),
        (
            Method::POST,
            format!("/orders/{order_id}/fulfil"),
            json!({}),
            "staff",
        ),
        (Method::GET, "/users".into(), Value::Null, "admin"),
        (
            Method::POST,
            "/users".into(),
            json!({"email": "perm@example.com", "password": "long-password", "role": "staff"}),
            "admin",
        ),
        (
            Method::PATCH,
            format!("/users/{user_id}"),
            json!({"role": "staff"}),
            "admin",
        ),
        (
            Method::GET,
            "/admin/reconciliation".into(),
            Value::Null,
            "admin",
        ),
        (Method::GET, "/dead-letters".into(), Value::Null, "admin"),
        // Open to every signed-in user: only the missing token is refused.
        (Method::GET, "/products".into(), Value::Null, "customer"),
        (
            Method::GET,
            "/products/PERM-1".into(),
            Value::Null,
            "customer",
        ),
        (Method::GET, "/orders".into(), Value::Null, "customer"),
        (
            Method::POST,
            "/orders".into(),
            json!({"items": [sku]}),
            "customer",
        ),
    ]
}

fn rank(role: &str) -> usize {
    ROLES.iter().position(|r| *r == role).expect("a known role")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_refuses_the_roles_below_the_one_the_contract_gives_it() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "PERM-1", 5, 0).await;
    let (_, customer) = app.customer().await;
    let order_id = app
        .place(&customer, json!([{"sku": "PERM-1", "quantity": 1}]))
        .await;
    // PATCH /users/{id} as admin changes that user's role, which revokes
    // their tokens: the target is a bystander, not one of the callers.
    let (user_id, _) = app.customer().await;
    let tokens = [
        customer,
        app.user_with_role("staff").await,
        app.user_with_role("manager").await,
        admin,
    ];

    let mut checked = 0;
    for (method, path, body, least) in endpoints(order_id, user_id) {
        let send = |token: Option<&str>| {
            let mut request = app.http.request(method.clone(), app.url(&path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if !body.is_null() {
                request = request.json(&body);
            }
            request.send()
        };
        let anonymous = send(None).await.unwrap();
        assert_eq!(
            anonymous.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token"
        );
        for (role, token) in ROLES.iter().zip(&tokens).take(rank(least)) {
            let response = send(Some(token)).await.unwrap();
            let status = response.status();
            let content_type = response.headers()["content-type"].clone();
            let body = response.text().await.unwrap();
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {path} as {role}: {body}"
            );
            assert_eq!(content_type, "application/problem+json");
            checked += 1;
        }
        // The least role allowed gets past the role check.
        let allowed = send(Some(&tokens[rank(least)])).await.unwrap();
        assert!(
            !matches!(
                allowed.status(),
                StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED
            ),
            "{method} {path} as {least}: {}",
            allowed.status()
        );
    }
    assert!(checked >= 30, "{checked} refusals checked");
}
