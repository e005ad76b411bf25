//! The logs: one JSON line per request with its request id, one order
//! followed by its trace id through every service, and never a password or a
//! token. A test binary of its own, because it installs the process's log
//! subscriber (once, shared by the tests when they run in one process).

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use orderflow_core::settings::LogFormat;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::TestApp;
use uuid::Uuid;

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

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// The process's log capture, installed by the first test that asks, before
/// any app, which then keeps this subscriber, at the default level whatever
/// the caller's RUST_LOG.
fn capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            std::env::set_var("RUST_LOG", "info");
            orderflow_core::telemetry::init_logging(LogFormat::Json, move || writer.clone());
            captured
        })
        .clone()
}

fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("every log line is one JSON object"))
        .collect()
}

/// The items of a logged list, `[a, b, -]`.
fn items(field: &Value) -> Vec<String> {
    field
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The value of `field` in a line's list at the position of `order_id` in
/// its `order_ids` list.
fn beside_order(line: &Value, order_id: &str, field: &str) -> Option<String> {
    let at = items(&line["order_ids"])
        .iter()
        .position(|id| id == order_id)?;
    items(&line[field]).get(at).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_logged_one_line_each_with_an_id_and_without_any_secret() {
    let captured = capture();

    let jwt_secret = "logs-test-jwt-secret-7f3a9c2e5b";
    let app = TestApp::start_with(&[("ORDERFLOW_JWT_SECRET", jwt_secret)], true).await;
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
                let text = captured.text();
                text.contains("batch committed").then_some(text)
            }
        },
    )
    .await;
    let lines = parse_lines(&text);
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
        jwt_secret,
    ] {
        assert!(!text.contains(secret), "a secret reached the logs");
    }
    assert!(
        !text.contains("Bearer "),
        "an Authorization header reached the logs"
    );
}

/// A webhook receiver that answers 200 and keeps each request's
/// `traceparent`.
async fn traceparent_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let keep = keep.clone();
            async move {
                let traceparent = headers
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                keep.lock().unwrap().push(traceparent);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_followed_by_its_trace_id_from_the_request_through_the_processor_to_the_notifier(
) {
    let captured = capture();
    let mut app = TestApp::start().await;
    app.start_notifier();
    let admin = app.admin_token().await;
    let manager = app.user_with_role("manager").await;
    let (hook_url, traceparents) = traceparent_receiver().await;
    let hook = app
        .post(
            &manager,
            "/webhooks",
            json!({"url": hook_url, "events": ["order.confirmed"], "secret": "a-secret-of-enough-length"}),
        )
        .await;
    assert_eq!(hook.status(), StatusCode::CREATED);
    app.product_with_stock(&admin, "TRACE-1", 5, 0).await;
    let (_, token) = app.customer().await;

    let trace_id = Uuid::new_v4().simple().to_string();
    let client_parent = &Uuid::new_v4().simple().to_string()[..16];
    let request_id = format!("follow-me-{}", &trace_id[..8]);
    let placed = app
        .http
        .post(app.url("/orders"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-{client_parent}-01"))
        .header("x-request-id", &request_id)
        .json(&json!({"items": [{"sku": "TRACE-1", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), StatusCode::ACCEPTED);
    let answered = placed.headers()["traceparent"].to_str().unwrap().to_owned();
    assert!(
        answered.starts_with(&format!("00-{trace_id}-")) && !answered.contains(client_parent),
        "the answer names the request's own span in the client's trace: {answered}"
    );
    let body: Value = placed.json().await.unwrap();
    let order_id = body["order_id"].as_str().unwrap().to_owned();

    // Each service logs after its work is done, so the lines may trail the
    // decision a little.
    let lines = testkit::eventually(
        Duration::from_secs(30),
        "the order's lines from ingress, processor and notifier",
        || {
            let captured = captured.clone();
            let order_id = order_id.clone();
            async move {
                let lines = parse_lines(&captured.text());
                let batch = lines.iter().any(|l| {
                    l["message"] == "batch committed" && items(&l["order_ids"]).contains(&order_id)
                });
                let handled = lines.iter().any(|l| {
                    l["message"] == "events handled" && items(&l["order_ids"]).contains(&order_id)
                });
                (batch && handled).then_some(lines)
            }
        },
    )
    .await;

    let request = lines
        .iter()
        .find(|l| l["target"] == "orderflow::request" && l["order_id"] == order_id.as_str())
        .expect("the request's line names the order");
    assert_eq!(request["route"], "/orders");
    assert_eq!(request["trace_id"], trace_id.as_str());
    assert_eq!(request["request_id"], request_id.as_str());

    let batch = lines
        .iter()
        .find(|l| l["message"] == "batch committed" && items(&l["order_ids"]).contains(&order_id))
        .unwrap();
    assert_eq!(
        beside_order(batch, &order_id, "trace_ids").as_deref(),
        Some(trace_id.as_str()),
        "the batch line gives the order's trace id beside its id: {batch}"
    );
    assert!(batch["partition"].is_number() && batch["commit_ms"].is_number());

    let handled: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "events handled" && items(&l["order_ids"]).contains(&order_id))
        .collect();
    assert!(!handled.is_empty());
    for line in handled {
        assert_eq!(
            beside_order(line, &order_id, "trace_ids").as_deref(),
            Some(trace_id.as_str()),
            "the notifier's line gives the event's trace id: {line}"
        );
        assert_eq!(
            beside_order(line, &order_id, "request_ids").as_deref(),
            Some(request_id.as_str()),
            "and the request id that placed the order: {line}"
        );
        assert!(line["duration_ms"].is_number());
    }

    // The webhook request for the confirmation continues the same trace.
    let delivered = testkit::eventually(
        Duration::from_secs(20),
        "the webhook for the confirmation",
        || {
            let traceparents = traceparents.clone();
            async move { traceparents.lock().unwrap().first().cloned() }
        },
    )
    .await;
    assert!(
        delivered.starts_with(&format!("00-{trace_id}-")) && delivered.ends_with("-01"),
        "the webhook request carries the order's trace: {delivered}"
    );

    let text = captured.text();
    for secret in [token.as_str(), admin.as_str(), manager.as_str()] {
        assert!(!text.contains(secret), "a token reached the logs");
    }
    assert!(
        !text.contains("a-secret-of-enough-length"),
        "a webhook secret reached the logs"
    );
}
