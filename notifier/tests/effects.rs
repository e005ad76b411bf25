//! Events without effects skip the inbox; events with effects keep their
//! exactly-once guarantee. These tests drive the batch handler directly with
//! messages pulled from the notifier's real consumer, so each batch's report
//! can be checked and a batch can be handed to the handler again.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::future::BoxFuture;
use futures::StreamExt;
use notifier::channel::{Channel, Channels, DeliveryError};
use notifier::consumer::EventConsumer;
use notifier::handler::{BatchReport, Handler};
use orderflow_core::domain::{OrderLine, RejectReason, Sku};
use orderflow_core::event::{Event, EventEnvelope, OrderRejected, StockChanged};
use support::{envelope, order_confirmed, stock_low, Harness};
use uuid::Uuid;

/// An endpoint nothing listens on: no dispatcher runs in these tests, the
/// rows it gets are what they check.
const NOWHERE: &str = "http://127.0.0.1:9/hook";
const SECRET: &str = "test-secret-0123456789";

/// An untracked channel, as the log is, that records what it was given.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<Uuid>>>);

impl Lines {
    fn of(&self, id: Uuid) -> usize {
        self.0.lock().unwrap().iter().filter(|c| **c == id).count()
    }
}

impl Channel for Lines {
    fn name(&self) -> &'static str {
        "lines"
    }

    fn wants(&self, event: &EventEnvelope) -> bool {
        !matches!(event.event, Event::StockChanged(_))
    }

    fn tracked(&self) -> bool {
        false
    }

    fn deliver<'a>(&'a self, event: &'a EventEnvelope) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.0.lock().unwrap().push(event.event_id);
            Ok(())
        })
    }
}

fn order_rejected() -> EventEnvelope {
    envelope(Event::OrderRejected(OrderRejected {
        order_id: Uuid::now_v7(),
        customer_id: Uuid::now_v7(),
        reason: RejectReason::InsufficientStock,
        items: vec![OrderLine {
            sku: Sku::parse("SKU-1").unwrap(),
            quantity: 1.try_into().unwrap(),
        }],
    }))
}

/// A handler with only `lines`, and the notifier's own consumer.
async fn setup(h: &Harness, lines: &Lines) -> (Handler, PullConsumer) {
    let handler = Handler::new(h.db.pool.clone(), Channels::new().with(lines.clone()));
    let consumer = EventConsumer::new(h.js.clone(), h.ns.naming.clone(), Duration::from_secs(30))
        .provision()
        .await
        .expect("provision the notifier consumer");
    (handler, consumer)
}

/// Pulls the next `n` messages (all published already) and handles them as
/// one batch.
async fn handle_next(handler: &Handler, consumer: &PullConsumer, n: usize) -> BatchReport {
    let mut batch: Vec<jetstream::Message> = Vec::with_capacity(n);
    while batch.len() < n {
        let mut messages = consumer
            .fetch()
            .max_messages(n - batch.len())
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .expect("fetch");
        while let Some(message) = messages.next().await {
            batch.push(message.expect("a message"));
        }
    }
    handler.handle(batch).await.expect("the batch is handled")
}

async fn publish_all(h: &Harness, events: &[&EventEnvelope], copy: &str) -> u64 {
    let mut last = 0;
    for event in events {
        last = h
            .publish(event, &format!("{}-{copy}", event.event_id))
            .await;
    }
    last
}

async fn count(h: &Harness, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(&h.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn order_events_nobody_subscribed_to_are_acked_logged_and_counted_without_the_inbox() {
    let h = Harness::new().await;
    let lines = Lines::default();
    let (handler, consumer) = setup(&h, &lines).await;
    let (a, b, c) = (order_confirmed(), order_confirmed(), order_rejected());
    let last = publish_all(&h, &[&a, &b, &c], "first").await;

    let report = handle_next(&handler, &consumer, 3).await;

    assert_eq!((report.new, report.duplicates), (3, 0), "{report:?}");
    h.wait_until_settled(last).await;
    assert_eq!(count(&h, "processed_events").await, 0);
    assert_eq!(count(&h, "webhook_deliveries").await, 0);
    for event in [&a, &b, &c] {
        assert_eq!(lines.of(event.event_id), 1, "one line per event");
    }

    // A redelivery has nothing to protect: the events are handled, and their
    // lines written, again.
    let last = publish_all(&h, &[&a, &b, &c], "second").await;
    let report = handle_next(&handler, &consumer, 3).await;
    assert_eq!((report.new, report.duplicates), (3, 0), "{report:?}");
    h.wait_until_settled(last).await;
    assert_eq!(count(&h, "processed_events").await, 0);
    assert_eq!(lines.of(a.event_id), 2);
}

#[tokio::test]
async fn only_the_events_an_endpoint_wants_are_recorded_and_enqueued_once_across_a_redelivery() {
    let h = Harness::new().await;
    h.insert_webhook(NOWHERE, &["order.confirmed"], SECRET)
        .await;
    let lines = Lines::default();
    let (handler, consumer) = setup(&h, &lines).await;
    let confirmed = [order_confirmed(), order_confirmed()];
    let rejected = [order_rejected(), order_rejected()];
    let batch = [&confirmed[0], &rejected[0], &confirmed[1], &rejected[1]];
    publish_all(&h, &batch, "first").await;

    let report = handle_next(&handler, &consumer, 4).await;
    assert_eq!((report.new, report.duplicates), (4, 0), "{report:?}");
    for event in &confirmed {
        assert_eq!(h.processed(event.event_id).await, 1);
        assert_eq!(
            h.webhook_deliveries(event.event_id).await,
            vec![("pending".to_owned(), 0)]
        );
    }
    for event in &rejected {
        assert_eq!(h.processed(event.event_id).await, 0);
        assert!(h.webhook_deliveries(event.event_id).await.is_empty());
    }

    // The same events again, as a republish after the duplicate window
    // would bring them: the confirmed ones are duplicates, the rejected
    // ones, with no effect to protect, are handled again.
    let last = publish_all(&h, &batch, "second").await;
    let report = handle_next(&handler, &consumer, 4).await;
    assert_eq!((report.new, report.duplicates), (2, 2), "{report:?}");
    h.wait_until_settled(last).await;
    assert_eq!(
        count(&h, "webhook_deliveries").await,
        2,
        "no second delivery"
    );
    assert_eq!(count(&h, "processed_events").await, 2);
    for event in &confirmed {
        assert_eq!(lines.of(event.event_id), 1, "a duplicate is not logged");
    }
    for event in &rejected {
        assert_eq!(lines.of(event.event_id), 2);
    }
}

#[tokio::test]
async fn an_endpoint_wanting_every_type_makes_every_event_effectful() {
    let h = Harness::new().await;
    h.insert_webhook(NOWHERE, &["*"], SECRET).await;
    let lines = Lines::default();
    let (handler, consumer) = setup(&h, &lines).await;
    let changed = envelope(Event::StockChanged(StockChanged {
        sku: "SKU-1".into(),
        on_hand: 3,
        reserved: 1,
        available: 2,
    }));
    let events = [order_confirmed(), order_rejected(), changed];
    let refs: Vec<&EventEnvelope> = events.iter().collect();
    publish_all(&h, &refs, "first").await;

    let report = handle_next(&handler, &consumer, 3).await;
    assert_eq!((report.new, report.duplicates), (3, 0), "{report:?}");
    for event in &events {
        assert_eq!(h.processed(event.event_id).await, 1);
        assert_eq!(h.webhook_deliveries(event.event_id).await.len(), 1);
    }

    let last = publish_all(&h, &refs, "second").await;
    let report = handle_next(&handler, &consumer, 3).await;
    assert_eq!((report.new, report.duplicates), (0, 3), "{report:?}");
    h.wait_until_settled(last).await;
    assert_eq!(count(&h, "webhook_deliveries").await, 3);
}

#[tokio::test]
async fn a_stock_low_opens_its_alert_once_across_a_redelivery_without_any_subscriber() {
    let h = Harness::new().await;
    let product_id = h.insert_product("WIDGET-9", 5).await;
    let lines = Lines::default();
    let (handler, consumer) = setup(&h, &lines).await;
    let low = stock_low("WIDGET-9", 2, 5);
    // Among order events nobody acts on, which must not change its fate.
    let order = order_confirmed();
    publish_all(&h, &[&order, &low], "first").await;

    let report = handle_next(&handler, &consumer, 2).await;
    assert_eq!((report.new, report.duplicates), (2, 0), "{report:?}");
    let last = publish_all(&h, &[&low], "second").await;
    let report = handle_next(&handler, &consumer, 1).await;
    assert_eq!((report.new, report.duplicates), (0, 1), "{report:?}");
    h.wait_until_settled(last).await;

    let alerts: Vec<(String, Uuid)> =
        sqlx::query_as("select state, raised_event_id from stock_alerts where product_id = $1")
            .bind(product_id)
            .fetch_all(&h.db.pool)
            .await
            .unwrap();
    assert_eq!(alerts, vec![("active".to_owned(), low.event_id)]);
    assert_eq!(h.processed(low.event_id).await, 1);
    assert_eq!(h.processed(order.event_id).await, 0);
    assert_eq!(
        lines.of(low.event_id),
        1,
        "the duplicate is not logged again"
    );
}
