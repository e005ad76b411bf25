//! When the stack's decisions become known: loadgen subscribes to the
//! `order.confirmed` and `order.rejected` events and notes when each order's
//! event arrives.
//!
//! This is the accurate end of "send to decision" for the stack. The order
//! row's `decided_at` is the start of the batch transaction (PostgreSQL's
//! `now()`), so it comes before the batch locked, decided and committed; the
//! event is published by the outbox relay only after the commit, so it is
//! the moment a customer (live stream, webhook) could first know. The
//! subscription is a plain NATS one on the stream's subjects: it creates no
//! consumer and leaves the stream untouched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use orderflow_core::naming::Naming;
use serde::Deserialize;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Messages buffered for the subscription before NATS drops them as a slow
/// consumer's: far more than one run's decisions arriving in a burst.
const SUBSCRIPTION_CAPACITY: usize = 1 << 20;

/// The decision events seen so far: order id and arrival.
type Seen = Arc<Mutex<HashMap<Uuid, Instant>>>;

pub struct DecisionWatch {
    seen: Seen,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    client: async_nats::Client,
}

#[derive(Deserialize)]
struct OrderEvent {
    order_id: Uuid,
}

impl DecisionWatch {
    /// Subscribes, and returns once the server has the subscription, so no
    /// event of the run can be missed by starting late.
    pub async fn start(nats_url: &str, namespace: &str) -> anyhow::Result<Self> {
        let naming = Naming::new(namespace)?;
        let client = async_nats::ConnectOptions::new()
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .connect(nats_url)
            .await
            .with_context(|| format!("connect to NATS at {nats_url}"))?;
        let confirmed = client
            .subscribe(naming.event_subject("order.confirmed"))
            .await?;
        let rejected = client
            .subscribe(naming.event_subject("order.rejected"))
            .await?;
        client.flush().await.context("register the subscriptions")?;
        let seen: Seen = Arc::default();
        let (stop, stopped) = oneshot::channel();
        let mut messages = futures::stream::select(confirmed, rejected);
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                tokio::pin!(stopped);
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        message = messages.next() => {
                            let Some(message) = message else { return };
                            let arrived = Instant::now();
                            if let Ok(event) = serde_json::from_slice::<OrderEvent>(&message.payload) {
                                // The first copy counts; a republished event
                                // is the same decision, known earlier.
                                seen.lock()
                                    .expect("seen lock")
                                    .entry(event.order_id)
                                    .or_insert(arrived);
                            }
                        }
                    }
                }
            }
        });
        Ok(Self {
            seen,
            stop,
            task,
            client,
        })
    }

    /// Waits up to `timeout` for the events of every order in `wanted`;
    /// true when all arrived. Waiting here rather than polling the database
    /// keeps loadgen's own queries off the database while the stack is still
    /// deciding, so they cannot slow what is being measured.
    pub async fn wait_for(&self, wanted: &[Uuid], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let all = {
                let seen = self.seen.lock().expect("seen lock");
                seen.len() >= wanted.len() && wanted.iter().all(|id| seen.contains_key(id))
            };
            if all {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits up to `grace` for the events of every order in `wanted`, stops
    /// watching and returns when each arrived.
    pub async fn finish(self, wanted: &[Uuid], grace: Duration) -> HashMap<Uuid, Instant> {
        self.wait_for(wanted, grace).await;
        let _ = self.stop.send(());
        let _ = self.task.await;
        let _ = self.client.drain().await;
        std::mem::take(&mut *self.seen.lock().expect("seen lock"))
    }
}
