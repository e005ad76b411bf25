//! The logs: one JSON line per request with its request id, and never a
//! password or a token. A test binary of its own, because it installs the
//! process's log subscriber.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use orderflow_core::settings::LogFormat;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::TestApp;

/// Everything logged, for the test to read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_logged_one_line_each_with_an_id_and_without_any_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    // Installed before the app, which then keeps this subscriber, at the
    // default level whatever the caller's RUST_LOG.
    std::env::set_var("RUST_LOG", "info");
    orderflow_core::telemetry::init_logging(LogFormat::Json, move || writer.clone());

    let app = TestApp::start().await;
    let password = "Zebra-Horse-Battery-42";
    let email = "secret-keeper@example.com";
    let register = app
        .http
        .post(app.url("/auth/register"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), StatusCode::CREATED);
    let token = app.login(email, password).await;
    let wrong = app
        .http
        .post(app.url("/auth/login"))
        .json(&json!({"email": email, "password": "Wrong-Guess-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "LOG-1", 5, 0).await;
    let placed = app
        .http
        .post(app.url("/orders"))
        .bearer_auth(&token)
        .header("x-request-id", "client-chosen-id-7")
        .json(&json!({"items": [{"sku": "LOG-1", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), StatusCode::ACCEPTED);
    assert_eq!(placed.headers()["x-request-id"], "client-chosen-id-7");
    let made_up = app.get(&token, "/orders").await;
    assert!(!made_up.headers()["x-request-id"].is_empty());
    app.wait_decided(1).await;
    // The processor logs a batch after its commit and its acks, so the line
    // may follow the decision by a moment.
    let text = testkit::eventually(
        std::time::Duration::from_secs(10),
        "the processor's batch line",
        || {
            let captured = captured.clone();
            async move {
                let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
                text.contains("batch committed").then_some(text)
            }
        },
    )
    .await;
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("every log line is one JSON object"))
        .collect();
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "orderflow::request")
        .collect();
    let order_line = requests
        .iter()
        .find(|l| l["route"] == "/orders" && l["method"] == "POST")
        .expect("a line for POST /orders");
    assert_eq!(order_line["status"], 202);
    assert_eq!(order_line["request_id"], "client-chosen-id-7");
    assert!(order_line["duration_ms"].is_number());
    assert!(
        lines.iter().any(|l| l["message"] == "batch committed"),
        "the processor logs its batches"
    );

    for secret in [
        password,
        "Wrong-Guess-123",
        token.as_str(),
        admin.as_str(),
        support::ADMIN_PASSWORD,
    ] {
        assert!(!text.contains(secret), "a secret reached the logs");
    }
    assert!(
        !text.contains("Bearer "),
        "an Authorization header reached the logs"
    );
}
