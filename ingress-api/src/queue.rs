//! The ORDERS stream as ingress-api sees it: publish an order and wait for
//! JetStream's acknowledgement; read back a queued order by id.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::Publish, stream::Stream};
use futures::future::join_all;
use orderflow_core::command::{OrderCommand, PlaceOrder};
use orderflow_core::naming::Naming;
use orderflow_core::trace_context::MessageTrace;
use tracing::warn;
use uuid::Uuid;

/// How long a publish whose acknowledgement never came may spend asking the
/// stream whether the order landed after all: the worst answer to `POST
/// /orders` is then the publish timeout plus this.
pub const LOOKUP_BUDGET: Duration = Duration::from_secs(1);

/// How the queue answered a publish.
#[derive(Debug)]
pub struct Queued {
    /// The stream sequence of the stored command, the original one for a duplicate.
    pub sequence: u64,
    /// True when JetStream already held a command with this order id.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The broker refused the order (stream full, no stream) or did not
    /// answer in time; the order is not queued, or it is not known whether
    /// it is.
    #[error("the order queue cannot take the order now: {0}")]
    Unavailable(String),
    /// The message was sent but neither acknowledged nor found in the
    /// stream afterwards (the connection dropped meanwhile): the broker may
    /// have stored it, and then the order is decided as any other.
    #[error("the order queue did not confirm the order: {0}")]
    Unconfirmed(String),
}

impl QueueError {
    /// What went wrong, for the log.
    pub fn reason(&self) -> &str {
        match self {
            QueueError::Unavailable(reason) | QueueError::Unconfirmed(reason) => reason,
        }
    }
}

/// What waits in the ORDERS stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlog {
    /// Commands (orders, cancellations, fulfilments) not yet processed.
    pub commands: u64,
    /// How long the oldest of them has waited; `None` when none waits.
    pub oldest_waited: Option<Duration>,
}

pub struct OrderQueue {
    /// The connection under `js`, asked whether it is up before a publish.
    client: async_nats::Client,
    js: jetstream::Context,
    stream: Stream,
    naming: Naming,
    partitions: u16,
    /// The whole budget for one publish, retries included.
    publish_timeout: Duration,
}

impl OrderQueue {
    pub fn new(
        client: async_nats::Client,
        js: jetstream::Context,
        stream: Stream,
        naming: Naming,
        partitions: u16,
        publish_timeout: Duration,
    ) -> Self {
        Self {
            client,
            js,
            stream,
            naming,
            partitions,
            publish_timeout,
        }
    }

    /// Publishes the order with its id as the message id and waits for the
    /// acknowledgement. When the outcome stays unknown (no acknowledgement
    /// within the budget), the queue is asked whether the order is there
    /// before it is given up as not accepted.
    /// `trace` travels in the message's headers (`traceparent`,
    /// `x-request-id`), so the processor continues the request's trace.
    pub async fn publish(
        &self,
        partition: u16,
        order: &PlaceOrder,
        trace: &MessageTrace,
    ) -> Result<Queued, QueueError> {
        let subject = self.naming.order_subject(partition, order.order_id);
        let payload = serde_json::to_vec(&OrderCommand::PlaceOrder(order.clone()))
            .expect("commands serialize");
        match self
            .publish_with_retry(subject, order.order_id.to_string(), payload, trace)
            .await
        {
            Ok(queued) => Ok(queued),
            Err(err) => {
                // Asking a broker the client is not connected to would only
                // wait out the request timeout. A stream without a leader (a
                // cluster electing one) does not answer either, so the
                // question gets a short budget of its own: past it the
                // answer is the same "may still be accepted" 503, not a
                // client left waiting.
                if self.connected() {
                    let lookup = self.find_in(partition, order.order_id);
                    if let Ok(Ok(Some(_))) = tokio::time::timeout(LOOKUP_BUDGET, lookup).await {
                        return Ok(Queued {
                            sequence: 0,
                            duplicate: true,
                        });
                    }
                }
                warn!(order_id = %order.order_id, %err, "publish failed");
                Err(err)
            }
        }
    }

    /// Queues a cancellation or fulfilment on the order's partition, behind
    /// its placement. The message id makes a repeated request a duplicate.
    pub async fn publish_action(
        &self,
        partition: u16,
        command: &OrderCommand,
        trace: &MessageTrace,
    ) -> Result<Queued, QueueError> {
        let action = match command {
            OrderCommand::CancelOrder(_) => "cancel",
            OrderCommand::FulfilOrder(_) => "fulfil",
            OrderCommand::PlaceOrder(_) => unreachable!("placements go through publish"),
        };
        let order_id = command.order_id();
        let subject = self
            .naming
            .order_action_subject(partition, order_id, action);
        let payload = serde_json::to_vec(command).expect("commands serialize");
        self.publish_with_retry(subject, format!("{order_id}.{action}"), payload, trace)
            .await
    }

    /// Publishes with `message_id` and waits for the acknowledgement. A
    /// timed-out attempt is retried with the same id (the stream's duplicate
    /// window drops the copy if the first one landed) until the publish
    /// timeout runs out.
    async fn publish_with_retry(
        &self,
        subject: String,
        message_id: String,
        payload: Vec<u8>,
        trace: &MessageTrace,
    ) -> Result<Queued, QueueError> {
        let mut headers = async_nats::HeaderMap::new();
        trace.inject(&mut headers);
        let deadline = Instant::now() + self.publish_timeout;
        let mut last_error = String::new();
        let mut pause = Duration::from_millis(25);
        let mut sent = false;
        while Instant::now() < deadline {
            // While the connection is down the client would buffer the
            // message and send it after reconnecting, long after this
            // request was answered 503: a refused order that is accepted
            // after all. So nothing is sent then, and the answer comes at
            // once rather than after the whole publish timeout.
            if !self.connected() {
                if !sent {
                    return Err(QueueError::Unavailable(
                        "not connected to the broker".into(),
                    ));
                }
                break;
            }
            sent = true;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt = async {
                let ack = self
                    .js
                    .send_publish(
                        subject.clone(),
                        Publish::build()
                            .headers(headers.clone())
                            .message_id(message_id.as_str())
                            .payload(payload.clone().into()),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                ack.into_future().await.map_err(|e| e.to_string())
            };
            match tokio::time::timeout(remaining, attempt).await {
                Ok(Ok(ack)) => {
                    return Ok(Queued {
                        sequence: ack.sequence,
                        duplicate: ack.duplicate,
                    })
                }
                Ok(Err(err)) if is_refusal(&err) => return Err(QueueError::Unavailable(err)),
                Ok(Err(err)) => last_error = err,
                Err(_) => last_error = "no acknowledgement in time".into(),
            }
            // A broker that fails fast (no responders while JetStream
            // recovers) must not turn the retries into a busy loop.
            let remaining = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(pause.min(remaining)).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        if last_error.is_empty() {
            last_error = "the connection to the broker was lost".into();
        }
        Err(QueueError::Unconfirmed(last_error))
    }

    /// Whether the client is connected to the broker now.
    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// How much waits in the ORDERS stream: it is a work queue, so every
    /// message in it is a command not yet decided and acknowledged, and its
    /// first message is the oldest of them.
    pub async fn backlog(&self) -> Result<Backlog, QueueError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        let oldest = (info.state.messages > 0).then(|| {
            let stored = info.state.first_timestamp.unix_timestamp_nanos();
            let now = i128::from(chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default());
            Duration::from_nanos(u64::try_from(now - stored).unwrap_or(0))
        });
        Ok(Backlog {
            commands: info.state.messages,
            oldest_waited: oldest,
        })
    }

    /// The queued command at `sequence`, if it is still queued.
    pub async fn get(&self, sequence: u64) -> Option<PlaceOrder> {
        let message = self.stream.get_raw_message(sequence).await.ok()?;
        decode(&message.payload)
    }

    /// The queued (not yet decided) command of `order_id`, looked for in every
    /// partition at once. `Err` when the broker cannot be asked.
    pub async fn find(&self, order_id: Uuid) -> Result<Option<PlaceOrder>, QueueError> {
        let lookups = (0..self.partitions).map(|p| self.find_in(p, order_id));
        let mut unreachable = None;
        for result in join_all(lookups).await {
            match result {
                Ok(Some(order)) => return Ok(Some(order)),
                Ok(None) => {}
                Err(err) => unreachable = Some(err),
            }
        }
        match unreachable {
            Some(err) => Err(err),
            None => Ok(None),
        }
    }

    async fn find_in(
        &self,
        partition: u16,
        order_id: Uuid,
    ) -> Result<Option<PlaceOrder>, QueueError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let subject = self.naming.order_subject(partition, order_id);
        match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => Ok(decode(&message.payload)),
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(QueueError::Unavailable(err.to_string())),
        }
    }
}

fn decode(payload: &[u8]) -> Option<PlaceOrder> {
    match serde_json::from_slice(payload) {
        Ok(OrderCommand::PlaceOrder(order)) => Some(order),
        Ok(_) | Err(_) => None,
    }
}

/// Whether JetStream answered with a definite no (the stream is full or
/// missing) rather than not answering: a definite no is not worth retrying.
fn is_refusal(err: &str) -> bool {
    let err = err.to_ascii_lowercase();
    err.contains("maximum") || err.contains("no stream") || err.contains("resource limits")
}
