//! The notifier's durable pull consumer on the EVENTS stream, and the loop
//! that feeds its messages to the [`Handler`] in batches.
//!
//! Shutdown cancels only the wait for the next message. Once a batch has
//! started, it runs to the end (commit, acks, deliveries), so stopping the
//! service never cuts an effect in half on purpose; messages the client had
//! buffered but not started are redelivered to the next instance.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer},
};
use futures::StreamExt;
use orderflow_core::broker;
use orderflow_core::naming::Naming;
use tokio_util::sync::CancellationToken;

use crate::handler::Handler;
use crate::retry::Backoff;

/// How long the server waits for an ack before redelivering. A batch plus its
/// deliveries (each bounded by [`crate::handler::DELIVERY_TIMEOUT`]) fits in
/// it comfortably; a redelivery that happens anyway is dropped by the inbox.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

/// Most messages handled in one transaction. Events are small and the inbox
/// insert is one statement, so the batch is bounded by what JetStream hands
/// over at once rather than by the database.
pub const BATCH_MAX: usize = 256;

/// How often the server confirms an idle pull is still alive; a silent
/// connection is noticed after two missed beats.
const IDLE_HEARTBEAT: Duration = Duration::from_secs(5);

/// Why the consumer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("find stream {stream}: {message}")]
    Stream { stream: String, message: String },
    #[error("create consumer {consumer} on {stream}: {message}")]
    Create {
        stream: String,
        consumer: String,
        message: String,
    },
}

/// Where the notifier's consumer lives and how it is configured.
#[derive(Clone)]
pub struct EventConsumer {
    /// The JetStream context of the service's one connection.
    js: jetstream::Context,
    /// Stream, subject and consumer names.
    naming: Naming,
    /// Ack wait of the consumer, when this call creates it.
    ack_wait: Duration,
}

impl EventConsumer {
    pub fn new(js: jetstream::Context, naming: Naming, ack_wait: Duration) -> Self {
        Self {
            js,
            naming,
            ack_wait,
        }
    }

    /// Gets the durable consumer, creating it if needed; idempotent, so every
    /// replica calls it at start. An existing consumer keeps its config.
    pub async fn provision(&self) -> Result<PullConsumer, ConsumerError> {
        let stream_name = self.naming.events_stream();
        let name = self.naming.notifier_consumer();
        let stream = self
            .js
            .get_stream(&stream_name)
            .await
            .map_err(|e| ConsumerError::Stream {
                stream: stream_name.clone(),
                message: e.to_string(),
            })?;
        stream
            .get_or_create_consumer(
                &name,
                pull::Config {
                    durable_name: Some(name.clone()),
                    description: Some("notifier: inbox, low-stock alerts, deliveries".into()),
                    // One subject filter: nats-server 2.9 ignores the plural
                    // `filter_subjects` and would deliver everything.
                    filter_subject: self.naming.events_subjects(),
                    ack_policy: AckPolicy::Explicit,
                    deliver_policy: DeliverPolicy::All,
                    ack_wait: self.ack_wait,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| ConsumerError::Create {
                stream: stream_name,
                consumer: name,
                message: e.to_string(),
            })
    }

    /// Pulls and handles batches until `shutdown` fires. Broker and database
    /// trouble is logged and waited out with a backoff; nothing here ends the
    /// loop but shutdown.
    pub async fn run(&self, handler: &Handler, shutdown: &CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        'connect: while !shutdown.is_cancelled() {
            let mut messages = match self.open().await {
                Ok(messages) => messages,
                Err(err) => {
                    tracing::warn!(error = %err, "could not start pulling events; retrying");
                    if !backoff.wait(shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            loop {
                // The only point where shutdown interrupts anything.
                let first = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break 'connect,
                    next = messages.next() => next,
                };
                let first = match first {
                    Some(Ok(message)) => message,
                    Some(Err(err)) => {
                        // Missed heartbeats and failed pulls are reported
                        // here and the stream carries on; a deleted consumer
                        // ends it, and the outer loop provisions it again.
                        tracing::warn!(error = %err, "pulling events failed");
                        if !backoff.wait(shutdown).await {
                            break 'connect;
                        }
                        continue;
                    }
                    None => {
                        tracing::warn!("the event pull ended; reopening it");
                        if !backoff.wait(shutdown).await {
                            break 'connect;
                        }
                        continue 'connect;
                    }
                };
                let batch = take_available(first, &mut messages);
                match handler.handle(batch).await {
                    Ok(report) => {
                        backoff.reset();
                        tracing::debug!(?report, "batch handled");
                    }
                    Err(_) => {
                        // Already logged by the handler's span; the messages
                        // come back after their retry delay.
                        if !backoff.wait(shutdown).await {
                            break 'connect;
                        }
                    }
                }
            }
        }
    }

    async fn open(&self) -> anyhow::Result<pull::Stream> {
        let consumer = self.provision().await?;
        consumer
            .stream()
            .max_messages_per_batch(BATCH_MAX)
            .heartbeat(IDLE_HEARTBEAT)
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("pull from consumer: {e}"))
    }
}

/// The batch: `first` and whatever else the client already holds, up to
/// [`BATCH_MAX`], without waiting for more. Under load batches fill up and
/// amortise the transaction; when idle each event is handled at once.
fn take_available(
    first: jetstream::Message,
    messages: &mut pull::Stream,
) -> Vec<jetstream::Message> {
    let mut batch = vec![first];
    while batch.len() < BATCH_MAX {
        // Polls once; dropping a pending `next()` loses nothing.
        match broker::ready_now(messages) {
            Some(Some(Ok(message))) => batch.push(message),
            Some(Some(Err(err))) => {
                tracing::warn!(error = %err, "pulling events failed");
                break;
            }
            Some(None) | None => break,
        }
    }
    batch
}
