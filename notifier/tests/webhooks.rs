//! Webhook delivery against real HTTP receivers started inside each test:
//! signatures, retries, per-order ordering, dead letters and replays, a
//! hanging endpoint that must not delay another, and exactly one delivery per
//! event however often NATS redelivers it.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use notifier::channel::Channels;
use notifier::webhooks::{self, headers, signature};
use notifier::Options;
use orderflow_core::domain::{OrderLine, Sku};
use orderflow_core::event::{Event, EventEnvelope, OrderConfirmed, OrderSettled};
use support::{envelope, order_confirmed, Harness, WAIT};
use uuid::Uuid;

const SECRET: &str = "test-secret-0123456789";

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    event_id: Uuid,
    event_type: String,
    attempt: u32,
    /// Whether the signature matched the body, the timestamp and the secret.
    signed: bool,
    /// Whether the body's `event_id` is the header's.
    body_matches: bool,
    at: Instant,
}

/// A webhook receiver on 127.0.0.1:0 that verifies every signature and
/// answers 500 to its first `fail_first` requests, 200 after.
#[derive(Clone)]
struct Receiver {
    url: String,
    log: Arc<Mutex<Vec<Received>>>,
}

#[derive(Clone)]
struct ReceiverState {
    log: Arc<Mutex<Vec<Received>>>,
    fail_first: usize,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState {
            log: log.clone(),
            fail_first,
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, log }
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until `count` requests arrived; answers them all.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        testkit::eventually(WAIT, &format!("{count} webhook requests"), || async {
            let received = self.received();
            (received.len() >= count).then_some(received)
        })
        .await
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    request_headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        request_headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let timestamp: i64 = header(headers::TIMESTAMP).parse().unwrap_or_default();
    let signed = signature::verify(
        SECRET,
        timestamp,
        &body,
        &header(headers::SIGNATURE),
        chrono::Utc::now().timestamp(),
        300,
    )
    .is_ok();
    let event_id: Uuid = header(headers::EVENT_ID).parse().unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let body_matches = parsed["event_id"] == event_id.to_string()
        && request_headers
            .get("content-type")
            .is_some_and(|v| v == "application/json");
    let mut log = state.log.lock().unwrap();
    log.push(Received {
        event_id,
        event_type: header(headers::EVENT_TYPE),
        attempt: header(headers::DELIVERY_ATTEMPT)
            .parse()
            .unwrap_or_default(),
        signed,
        body_matches,
        at: Instant::now(),
    });
    if log.len() <= state.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// An endpoint that accepts connections and never answers.
async fn hanging_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

/// Short backoffs so retries happen within a test's wait.
fn quick(max_attempts: u32) -> webhooks::Config {
    webhooks::Config {
        max_attempts,
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_millis(400),
        timeout: Duration::from_secs(2),
        poll_interval: Duration::from_millis(50),
        ..webhooks::Config::default()
    }
}

/// No other channels: these tests are about webhooks alone.
fn options() -> Options {
    Options {
        channels: Some(Channels::new()),
        ..Options::default()
    }
}

fn order_event(order_id: Uuid, cancelled: bool) -> EventEnvelope {
    let items = vec![OrderLine {
        sku: Sku::parse("SKU-1").unwrap(),
        quantity: 1.try_into().unwrap(),
    }];
    let customer_id = Uuid::from_u128(1);
    envelope(if cancelled {
        Event::OrderCancelled(OrderSettled {
            order_id,
            customer_id,
            items,
        })
    } else {
        Event::OrderConfirmed(OrderConfirmed {
            order_id,
            customer_id,
            items,
        })
    })
}

#[tokio::test]
async fn a_failing_endpoint_gets_signed_retries_of_one_event_until_it_answers() {
    let h = Harness::new().await;
    let receiver = Receiver::start(2).await;
    h.insert_webhook(&receiver.url, &["order.confirmed"], SECRET)
        .await;
    let notifier = h.start_with_webhooks(options(), quick(5));

    let event = order_confirmed();
    h.publish(&event, &event.event_id.to_string()).await;
    let rows = h.wait_until_webhook(event.event_id, "delivered").await;
    notifier.stop().await;

    assert_eq!(rows, vec![("delivered".to_owned(), 3)]);
    let received = receiver.received();
    assert_eq!(
        received.len(),
        3,
        "two failures and one success: {received:?}"
    );
    for (n, request) in received.iter().enumerate() {
        assert_eq!(
            request.event_id, event.event_id,
            "the same event id every time"
        );
        assert_eq!(request.event_type, "order.confirmed");
        assert_eq!(
            request.attempt,
            n as u32 + 1,
            "the attempt header counts up"
        );
        assert!(request.signed, "every signature verifies");
        assert!(request.body_matches, "the body is the event's JSON");
    }
    let attempts: Vec<(Option<i32>, i32)> = sqlx::query_as(
        "select a.status_code, a.attempt from webhook_attempts a
         join webhook_deliveries d on d.id = a.delivery_id
         where d.event_id = $1 order by a.id",
    )
    .bind(event.event_id)
    .fetch_all(&h.db.pool)
    .await
    .unwrap();
    assert_eq!(
        attempts,
        vec![(Some(500), 1), (Some(500), 2), (Some(200), 3)]
    );
}

#[tokio::test]
async fn an_endpoint_that_never_answers_does_not_delay_another() {
    let h = Harness::new().await;
    let healthy = Receiver::start(0).await;
    h.insert_webhook(&hanging_endpoint().await, &["*"], SECRET)
        .await;
    h.insert_webhook(&healthy.url, &["*"], SECRET).await;
    let timeout = Duration::from_secs(5);
    let notifier = h.start_with_webhooks(
        options(),
        webhooks::Config {
            timeout,
            ..quick(3)
        },
    );

    // The first event has the hanging endpoint's request in flight; the
    // second must still reach the healthy endpoint at once.
    let first = order_confirmed();
    let started = Instant::now();
    h.publish(&first, &first.event_id.to_string()).await;
    healthy.wait_for(1).await;
    let second = order_confirmed();
    h.publish(&second, &second.event_id.to_string()).await;
    let received = healthy.wait_for(2).await;
    let took = received[1].at - started;
    assert!(
        took < timeout / 2,
        "the healthy endpoint got both events after {took:?}, not well before the {timeout:?} timeout"
    );
    assert_eq!(
        received.iter().map(|r| r.event_id).collect::<Vec<_>>(),
        vec![first.event_id, second.event_id]
    );
    notifier.stop().await;
}

#[tokio::test]
async fn events_of_one_order_reach_an_endpoint_in_order_even_when_the_first_fails_once() {
    let h = Harness::new().await;
    let receiver = Receiver::start(1).await;
    h.insert_webhook(
        &receiver.url,
        &["order.confirmed", "order.cancelled"],
        SECRET,
    )
    .await;
    let order_id = Uuid::now_v7();
    let confirmed = order_event(order_id, false);
    let cancelled = order_event(order_id, true);
    // Both are waiting before the notifier starts, so they are recorded in
    // one batch and both are due at once.
    h.publish(&confirmed, "confirmed").await;
    h.publish(&cancelled, "cancelled").await;
    let notifier = h.start_with_webhooks(options(), quick(5));

    h.wait_until_webhook(cancelled.event_id, "delivered").await;
    notifier.stop().await;

    let order: Vec<(Uuid, u32)> = receiver
        .received()
        .iter()
        .map(|r| (r.event_id, r.attempt))
        .collect();
    assert_eq!(
        order,
        vec![
            (confirmed.event_id, 1),
            (confirmed.event_id, 2),
            (cancelled.event_id, 1)
        ],
        "the cancellation waits for the confirmation's retry"
    );
}

#[tokio::test]
async fn a_delivery_dead_after_its_last_attempt_is_delivered_after_a_replay() {
    let h = Harness::new().await;
    let receiver = Receiver::start(2).await;
    h.insert_webhook(&receiver.url, &["*"], SECRET).await;
    let notifier = h.start_with_webhooks(options(), quick(2));

    let event = order_confirmed();
    h.publish(&event, &event.event_id.to_string()).await;
    let rows = h.wait_until_webhook(event.event_id, "dead").await;
    assert_eq!(rows, vec![("dead".to_owned(), 2)]);
    assert_eq!(
        receiver.received().len(),
        2,
        "no attempt after the last one"
    );

    // What the admin API's replay does.
    let replayed = sqlx::query(
        "update webhook_deliveries
         set state = 'pending', attempts = 0, next_attempt_at = now(),
             leased_until = null, dead_at = null
         where event_id = $1 and state = 'dead'",
    )
    .bind(event.event_id)
    .execute(&h.db.pool)
    .await
    .unwrap();
    assert_eq!(replayed.rows_affected(), 1);
    h.wait_until_webhook(event.event_id, "delivered").await;
    notifier.stop().await;

    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert!(received
        .iter()
        .all(|r| r.event_id == event.event_id && r.signed));
    assert_eq!(received[2].attempt, 1, "a replay starts counting again");
}

#[tokio::test]
async fn a_redelivered_event_yields_one_webhook_delivery() {
    let h = Harness::new().await;
    let receiver = Receiver::start(0).await;
    h.insert_webhook(&receiver.url, &["*"], SECRET).await;
    let event = order_confirmed();
    // The same event under two message ids, as a republish after a lost
    // PubAck would look once the broker's duplicate window has passed.
    h.publish(&event, "first-copy").await;
    let last = h.publish(&event, "second-copy").await;
    let marker = order_confirmed();
    let notifier = h.start_with_webhooks(options(), quick(3));
    h.wait_until_settled(last).await;
    // Another event through the same endpoint afterwards shows the copies
    // had every chance to be delivered.
    h.publish(&marker, "marker").await;
    h.wait_until_webhook(marker.event_id, "delivered").await;
    h.wait_until_webhook(event.event_id, "delivered").await;
    notifier.stop().await;

    assert_eq!(h.webhook_deliveries(event.event_id).await.len(), 1);
    let copies = receiver
        .received()
        .iter()
        .filter(|r| r.event_id == event.event_id)
        .count();
    assert_eq!(copies, 1, "the receiver saw the event once");
}

#[tokio::test]
async fn an_endpoint_gets_only_the_event_types_it_asked_for() {
    let h = Harness::new().await;
    let receiver = Receiver::start(0).await;
    h.insert_webhook(&receiver.url, &["order.cancelled"], SECRET)
        .await;
    let notifier = h.start_with_webhooks(options(), quick(3));
    let order_id = Uuid::now_v7();
    let confirmed = order_event(order_id, false);
    let cancelled = order_event(order_id, true);
    h.publish(&confirmed, "confirmed").await;
    let last = h.publish(&cancelled, "cancelled").await;
    h.wait_until_settled(last).await;
    h.wait_until_webhook(cancelled.event_id, "delivered").await;
    notifier.stop().await;

    assert!(h.webhook_deliveries(confirmed.event_id).await.is_empty());
    let types: Vec<String> = receiver
        .received()
        .into_iter()
        .map(|r| r.event_type)
        .collect();
    assert_eq!(types, vec!["order.cancelled".to_owned()]);
}
