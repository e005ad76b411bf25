//! What the notifier's integration tests share: a harness around a real
//! PostgreSQL database and a real JetStream namespace of the test's own (both
//! from `testkit`), event builders, and a recording channel.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, context::Publish};
use futures::future::BoxFuture;
use notifier::channel::{Channel, DeliveryError};
use notifier::Options;
use orderflow_core::broker::{self, StreamLimits};
use orderflow_core::domain::{OrderLine, Sku};
use orderflow_core::event::{Event, EventEnvelope, OrderConfirmed, StockThresholdCrossed};
use orderflow_core::settings::Settings;
use testkit::{TestDatabase, TestNamespace};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long any wait in these tests may take before it counts as a failure.
pub const WAIT: Duration = Duration::from_secs(10);

/// A test's database, namespace and JetStream connection.
pub struct Harness {
    /// The test's own migrated database; dropped with the harness.
    pub db: TestDatabase,
    /// The test's own streams; deleted with the harness.
    pub ns: TestNamespace,
    /// For publishing and inspecting the streams.
    pub js: jetstream::Context,
}

impl Harness {
    /// A fresh database and namespace, with the streams already provisioned
    /// so the test can publish before any notifier runs.
    pub async fn new() -> Self {
        testkit::init_logging();
        let db = TestDatabase::create()
            .await
            .expect("create a test database");
        let ns = TestNamespace::new();
        let client = async_nats::connect(testkit::nats_url())
            .await
            .expect("connect to NATS");
        let js = jetstream::new(client);
        let harness = Self { db, ns, js };
        let settings = harness.settings();
        let limits = StreamLimits::from(&settings);
        broker::provision(&harness.js, &harness.ns.naming, &limits)
            .await
            .expect("provision the streams");
        harness
    }

    pub fn settings(&self) -> Settings {
        testkit::settings(&self.db, &self.ns, &[])
    }

    /// Starts a notifier in a task of its own.
    pub fn start(&self, options: Options) -> Running {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(notifier::run_with(
            self.settings(),
            options,
            shutdown.clone(),
        ));
        Running { shutdown, task }
    }

    /// Starts a notifier with its own webhook settings (short backoffs and
    /// timeouts in tests) in a task of its own.
    pub fn start_with_webhooks(
        &self,
        options: Options,
        webhooks: notifier::webhooks::Config,
    ) -> Running {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(notifier::run_with_webhooks(
            self.settings(),
            options,
            webhooks,
            shutdown.clone(),
        ));
        Running { shutdown, task }
    }

    /// Registers an active webhook endpoint; answers its id.
    pub async fn insert_webhook(&self, url: &str, events: &[&str], secret: &str) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "insert into webhooks (id, url, events, secret, created_by)
             values ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(url)
        .bind(events)
        .bind(secret)
        .bind(Uuid::now_v7())
        .execute(&self.db.pool)
        .await
        .expect("insert webhook");
        id
    }

    /// The (state, attempts) of the webhook deliveries of `event_id`, one per
    /// endpoint.
    pub async fn webhook_deliveries(&self, event_id: Uuid) -> Vec<(String, i32)> {
        sqlx::query_as(
            "select state, attempts from webhook_deliveries where event_id = $1 order by id",
        )
        .bind(event_id)
        .fetch_all(&self.db.pool)
        .await
        .expect("read webhook deliveries")
    }

    /// Waits until every webhook delivery of `event_id` is in `state`.
    pub async fn wait_until_webhook(&self, event_id: Uuid, state: &str) -> Vec<(String, i32)> {
        testkit::eventually(
            WAIT,
            &format!("the webhook deliveries of {event_id} to be {state}"),
            || async {
                let rows = self.webhook_deliveries(event_id).await;
                (!rows.is_empty() && rows.iter().all(|(s, _)| s == state)).then_some(rows)
            },
        )
        .await
    }

    /// Publishes `envelope` on its subject with the JetStream message id
    /// `message_id` and waits for the stream to store it.
    pub async fn publish(&self, envelope: &EventEnvelope, message_id: &str) -> u64 {
        let subject = self.ns.naming.event_subject(envelope.event.kind());
        let payload = serde_json::to_vec(envelope).expect("serialize event");
        self.publish_raw(&subject, payload, message_id).await
    }

    /// Publishes any bytes; answers the stream sequence they were stored at.
    pub async fn publish_raw(&self, subject: &str, payload: Vec<u8>, message_id: &str) -> u64 {
        let ack = self
            .js
            .send_publish(
                subject.to_owned(),
                Publish::build()
                    .message_id(message_id)
                    .payload(payload.into()),
            )
            .await
            .expect("publish")
            .await
            .expect("stream acknowledged the publish");
        assert!(
            !ack.duplicate,
            "message id {message_id} was taken as a duplicate"
        );
        ack.sequence
    }

    pub async fn stored_messages(&self) -> u64 {
        let mut stream = self
            .js
            .get_stream(self.ns.naming.events_stream())
            .await
            .expect("get the events stream");
        stream.info().await.expect("stream info").state.messages
    }

    /// Waits until the notifier has settled (acked or terminated) every
    /// message up to stream sequence `last` and holds none unsettled.
    pub async fn wait_until_settled(&self, last: u64) -> consumer::Info {
        testkit::eventually(
            WAIT,
            &format!("the consumer to settle up to {last}"),
            || async {
                // The consumer does not exist until the notifier created it.
                let stream = self
                    .js
                    .get_stream(self.ns.naming.events_stream())
                    .await
                    .ok()?;
                let info = stream
                    .consumer_info(self.ns.naming.notifier_consumer())
                    .await
                    .ok()?;
                (info.ack_floor.stream_sequence >= last
                    && info.num_ack_pending == 0
                    && info.num_pending == 0)
                    .then_some(info)
            },
        )
        .await
    }

    pub async fn insert_product(&self, sku: &str, threshold: i64) -> i64 {
        sqlx::query_scalar(
            "insert into products (sku, name, price_cents, low_stock_threshold)
             values ($1, $2, 1999, $3) returning id",
        )
        .bind(sku)
        .bind(format!("Product {sku}"))
        .bind(threshold)
        .fetch_one(&self.db.pool)
        .await
        .expect("insert product")
    }

    /// How many times `event_id` is in the inbox.
    pub async fn processed(&self, event_id: Uuid) -> i64 {
        sqlx::query_scalar("select count(*) from processed_events where event_id = $1")
            .bind(event_id)
            .fetch_one(&self.db.pool)
            .await
            .expect("count processed events")
    }

    /// The (channel, outcome) of every delivery row of `event_id`.
    pub async fn deliveries(&self, event_id: Uuid) -> Vec<(String, String)> {
        sqlx::query_as(
            "select channel, outcome from notification_deliveries
             where event_id = $1 order by channel",
        )
        .bind(event_id)
        .fetch_all(&self.db.pool)
        .await
        .expect("read deliveries")
    }

    /// Waits until `event_id` is recorded in the inbox: handled, and
    /// delivered through the untracked channels (the log) right after. Only
    /// events with effects are recorded; wait for others with
    /// [`Harness::wait_until_settled`].
    pub async fn wait_until_handled(&self, event_id: Uuid) {
        testkit::eventually(WAIT, &format!("event {event_id} to be handled"), || async {
            (self.processed(event_id).await > 0).then_some(())
        })
        .await
    }

    /// Waits until `event_id` has a `delivered` row.
    pub async fn wait_until_delivered(&self, event_id: Uuid) {
        testkit::eventually(
            WAIT,
            &format!("event {event_id} to be delivered"),
            || async {
                self.deliveries(event_id)
                    .await
                    .iter()
                    .any(|(_, outcome)| outcome == "delivered")
                    .then_some(())
            },
        )
        .await
    }
}

/// A notifier running in a task.
pub struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Asks for a graceful shutdown and checks it ends cleanly and promptly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the notifier stops within the wait")
            .expect("the notifier task did not panic")
            .expect("the notifier ends without error");
    }

    /// Kills the notifier as a crash would: its future is dropped wherever it
    /// is, with no shutdown, flush or drain.
    pub async fn kill(self) {
        self.task.abort();
        let ended = self.task.await;
        assert!(
            ended.is_err_and(|e| e.is_cancelled()),
            "the notifier was aborted"
        );
    }
}

pub fn envelope(event: Event) -> EventEnvelope {
    EventEnvelope::new(event, chrono::Utc::now())
}

pub fn order_confirmed() -> EventEnvelope {
    envelope(Event::OrderConfirmed(OrderConfirmed {
        order_id: Uuid::now_v7(),
        customer_id: Uuid::now_v7(),
        items: vec![OrderLine {
            sku: Sku::parse("SKU-1").unwrap(),
            quantity: 1.try_into().unwrap(),
        }],
    }))
}

pub fn stock_low(sku: &str, available: i64, threshold: i64) -> EventEnvelope {
    envelope(Event::StockLow(StockThresholdCrossed {
        sku: sku.to_owned(),
        available,
        threshold,
    }))
}

pub fn stock_recovered(sku: &str, available: i64, threshold: i64) -> EventEnvelope {
    envelope(Event::StockRecovered(StockThresholdCrossed {
        sku: sku.to_owned(),
        available,
        threshold,
    }))
}

/// A channel that records every delivery it is asked for and, when told to,
/// never finishes delivering one event: the notifier is then stuck after
/// its commit and acks, as a process is when it dies mid-delivery.
#[derive(Clone, Default)]
pub struct Recorder {
    /// The event ids delivered, in call order, across every notifier sharing it.
    pub calls: Arc<Mutex<Vec<Uuid>>>,
    /// The event whose delivery hangs.
    pub stall_at: Option<Uuid>,
}

impl Recorder {
    pub fn calls(&self) -> Vec<Uuid> {
        self.calls.lock().unwrap().clone()
    }
}

impl Channel for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn wants(&self, _event: &EventEnvelope) -> bool {
        true
    }

    fn deliver<'a>(&'a self, event: &'a EventEnvelope) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(event.event_id);
            if self.stall_at == Some(event.event_id) {
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }
}
