//! Live updates: `GET /events/stream` as Server-Sent Events, fanned out
//! through NATS to every replica, filtered per caller, resumable.

mod support;

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::TestApp;
use tokio_util::sync::CancellationToken;

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct Frame {
    id: u64,
    event: String,
    data: Value,
}

/// Reads frames from an open event stream.
struct EventStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl EventStream {
    async fn open(app: &TestApp, base: &str, token: &str, last_event_id: Option<u64>) -> Self {
        let mut request = app
            .http
            .get(format!("{base}/events/stream"))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        Self::from_response(request.send().await.unwrap())
    }

    fn from_response(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event, or a panic when none comes within the deadline.
    async fn next(&mut self) -> Frame {
        tokio::time::timeout(Duration::from_secs(20), self.read())
            .await
            .expect("an event within the deadline")
    }

    async fn read(&mut self) -> Frame {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, None, None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = Some(serde_json::from_str(v.trim()).unwrap());
                    }
                }
                // Keep-alive comments carry no event.
                if let (Some(id), Some(event), Some(data)) = (id, event, data) {
                    return Frame { id, event, data };
                }
                continue;
            }
            let chunk = self
                .body
                .next()
                .await
                .expect("the stream stays open")
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

async fn receive(app: &TestApp, token: &str, sku: &str, quantity: i64) {
    let response = app
        .post(
            token,
            "/inventory/receive",
            json!({"sku": sku, "quantity": quantity}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_streams_an_event_published_once() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "LIVE-1", 0, 0).await;
    let staff = app.user_with_role("staff").await;

    // A second ingress-api replica on the same database and NATS.
    let mut settings = app.settings.clone();
    settings.http_addr = "127.0.0.1:0".parse().unwrap();
    let shutdown = CancellationToken::new();
    let second = ingress_api::startup::Application::build(settings, shutdown.clone())
        .await
        .unwrap();
    let second_base = format!("http://{}", second.local_addr());
    tokio::spawn(second.serve());

    let mut first_stream = EventStream::open(&app, &app.base, &staff, None).await;
    let mut second_stream = EventStream::open(&app, &second_base, &staff, None).await;
    receive(&app, &staff, "LIVE-1", 5).await;

    let one = first_stream.next().await;
    let two = second_stream.next().await;
    assert_eq!(one.event, "stock.changed");
    assert_eq!(one.data["sku"], "LIVE-1");
    assert_eq!(one.data["available"], 5);
    assert_eq!(
        (one.id, &one.data["event_id"]),
        (two.id, &two.data["event_id"])
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_client_resumes_right_after_its_last_event_without_gaps() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "LIVE-2", 0, 0).await;
    let staff = app.user_with_role("staff").await;

    let mut stream = EventStream::open(&app, &app.base, &staff, None).await;
    receive(&app, &staff, "LIVE-2", 1).await;
    let seen = stream.next().await;
    drop(stream);

    // Events happen while the client is away.
    receive(&app, &staff, "LIVE-2", 2).await;
    receive(&app, &staff, "LIVE-2", 3).await;

    let mut resumed = EventStream::open(&app, &app.base, &staff, Some(seen.id)).await;
    let mut frames = vec![resumed.next().await];
    while frames.last().unwrap().data["available"] != 6
        || frames.last().unwrap().event != "stock.changed"
    {
        frames.push(resumed.next().await);
    }
    assert_eq!(
        frames[0].id,
        seen.id + 1,
        "no gap after the last event seen"
    );
    for pair in frames.windows(2) {
        assert_eq!(pair[1].id, pair[0].id + 1, "consecutive events");
    }
    let totals: Vec<Value> = frames
        .iter()
        .filter(|f| f.event == "stock.changed")
        .map(|f| f.data["available"].clone())
        .collect();
    assert!(totals.ends_with(&[json!(3), json!(6)]), "{totals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_sees_only_the_events_of_their_own_orders() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "LIVE-3", 10, 0).await;
    let (ann_id, ann) = app.customer().await;
    let (_, bob) = app.customer().await;

    // Through the query string, as a browser's EventSource must.
    let response = app
        .http
        .get(app.url(&format!("/events/stream?access_token={ann}")))
        .send()
        .await
        .unwrap();
    let mut stream = EventStream::from_response(response);

    app.place(&bob, json!([{"sku": "LIVE-3", "quantity": 1}]))
        .await;
    let first = app
        .place(&ann, json!([{"sku": "LIVE-3", "quantity": 1}]))
        .await;
    app.place(&bob, json!([{"sku": "LIVE-3", "quantity": 1}]))
        .await;
    let last = app
        .place(&ann, json!([{"sku": "LIVE-3", "quantity": 1}]))
        .await;

    // Everything before Ann's last order's event went past her stream:
    // Bob's orders and every stock change were filtered out.
    let one = stream.next().await;
    let two = stream.next().await;
    for (frame, order) in [(&one, first), (&two, last)] {
        assert_eq!(frame.event, "order.confirmed");
        assert_eq!(frame.data["order_id"], json!(order));
        assert_eq!(frame.data["customer_id"], json!(ann_id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_refuses_a_missing_or_invalid_token_and_a_bad_last_event_id() {
    let app = TestApp::start_with(&[], false).await;
    let (_, customer) = app.customer().await;
    let anonymous = app
        .http
        .get(app.url("/events/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let forged = app
        .http
        .get(app.url("/events/stream?access_token=not.a.token"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let bad = app
        .http
        .get(app.url("/events/stream"))
        .bearer_auth(&customer)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
