//! The batch handler: from a batch of JetStream messages to recorded effects,
//! settled messages and delivered notifications.
//!
//! The order of the steps is what makes the notifier exactly-once in effect:
//!
//! 1. decode each message; terminate the undecodable ones (they can never
//!    succeed, and redelivering them would only block the consumer);
//! 2. read which event types active webhook endpoints want, and set apart
//!    the events without effects ([`effects`]): they skip the inbox;
//! 3. in one transaction, for the events with effects only: record their ids
//!    in the inbox, which says which are new, apply the new ones' alert
//!    changes, record their planned deliveries through tracked channels as
//!    `pending`, and their webhook deliveries (one per matching endpoint);
//!    commit, and wake the webhook dispatcher. No event with effects, no
//!    transaction;
//! 4. ack every decoded message, new and duplicate alike;
//! 5. deliver the new events, and the events without effects through the
//!    untracked channels (the log), and write each tracked outcome to its row.
//!
//! A crash before the commit changes nothing and the batch comes back. A crash
//! after it leaves the events recorded, so a redelivery is acked as a
//! duplicate and never delivered twice; deliveries cut short stay `pending`.
//! An event without effects is not recorded, so a redelivery handles it
//! again: one more log line, which is all it ever did.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use orderflow_core::event::EventEnvelope;
use orderflow_core::metric_names;
use orderflow_core::trace_context::MessageTrace;
use sqlx::PgPool;
use tokio::sync::Notify;
use tracing::instrument;
use uuid::Uuid;

use crate::alerts;
use crate::channel::{Channel, Channels, DeliveryError};
use crate::deliveries::{self, Attempt, Outcome, RetryPolicy};
use crate::effects::{self, WebhookInterest};
use crate::event_trace;
use crate::inbox;
use crate::webhooks;

/// How many deliveries of one batch run at once: enough to overlap slow
/// webhooks, few enough not to flood one destination.
const DELIVERY_CONCURRENCY: usize = 16;

/// The longest one delivery may take. A channel that hangs would otherwise
/// stall the consumer; the delivery is recorded as failed instead.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server waits before redelivering a batch whose transaction
/// failed; a database blip then costs a second, not the 30 s ack wait.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// How long an event of a type this notifier does not know waits before it
/// is offered again, for as long as it takes the notifier to be upgraded.
pub const UNKNOWN_TYPE_DELAY: Duration = Duration::from_secs(30);

/// Why a batch could not be recorded. Its messages have been handed back to
/// the server for redelivery.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{step}")]
    Database {
        step: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

fn step(step: &'static str) -> impl FnOnce(sqlx::Error) -> BatchError {
    move |source| BatchError::Database { step, source }
}

/// What a batch came to, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// Messages terminated as undecodable.
    pub poison: usize,
    /// Events seen for the first time. Events without effects are never
    /// recorded, so each one's first copy in a batch counts here, redelivered
    /// or not: "new" means handled by this batch.
    pub new: usize,
    /// Events already handled, by an earlier batch or earlier in this one
    /// (later copies of one event in a batch, with effects or not).
    pub duplicates: usize,
    /// Deliveries that succeeded.
    pub delivered: usize,
    /// Deliveries that failed.
    pub failed: usize,
}

/// What to tell the server about a message. Every message leaves the handler
/// through [`settle`], so this is the one place outcomes map to acks.
#[derive(Debug, Clone, Copy)]
enum Settlement {
    /// Handled, or already handled: never send it again.
    Ack,
    /// Not handled this time: send it again after the delay.
    Retry(Duration),
    /// Can never be handled: never send it again, and it is not handled.
    Terminate,
}

/// A message whose body decoded.
struct Decoded {
    message: jetstream::Message,
    envelope: EventEnvelope,
    /// The trace context and request id the message carried; while spans are
    /// exported, the context of this event's span instead.
    trace: MessageTrace,
}

/// Handles batches; cheap to clone.
#[derive(Clone)]
pub struct Handler {
    /// Where the inbox, alerts and deliveries live.
    pool: PgPool,
    /// Where notifications go.
    channels: Channels,
    /// Woken after a batch recorded webhook deliveries, so the dispatcher
    /// sends them at once instead of at its next poll.
    webhook_wake: Arc<Notify>,
    /// How failed channel deliveries are retried.
    retries: RetryPolicy,
}

impl Handler {
    pub fn new(pool: PgPool, channels: Channels) -> Self {
        Self {
            pool,
            channels,
            webhook_wake: Arc::new(Notify::new()),
            retries: RetryPolicy::default(),
        }
    }

    /// The same handler, retrying failed deliveries by `retries`.
    pub fn with_retries(mut self, retries: RetryPolicy) -> Self {
        self.retries = retries;
        self
    }

    /// The same handler, waking `wake` after each batch that recorded
    /// webhook deliveries.
    pub fn with_webhook_wake(mut self, wake: Arc<Notify>) -> Self {
        self.webhook_wake = wake;
        self
    }

    /// Handles one batch, in stream order. On `Err` nothing was recorded and
    /// every decoded message was handed back for redelivery; the caller should
    /// back off before pulling more.
    #[instrument(name = "notifier_batch", skip_all, fields(batch_size = messages.len()), err)]
    pub async fn handle(
        &self,
        messages: Vec<jetstream::Message>,
    ) -> Result<BatchReport, BatchError> {
        let started = Instant::now();
        let mut report = BatchReport::default();
        let mut decoded = self.decode(messages, &mut report).await;
        if decoded.is_empty() {
            return Ok(report);
        }
        // Open until the batch is done, while spans are exported.
        let _spans: Vec<_> = decoded
            .iter_mut()
            .filter_map(|d| event_trace::open_span(&d.envelope, &mut d.trace))
            .collect();

        let fresh = match self.record(&decoded).await {
            Ok(fresh) => fresh,
            Err(err) => {
                settle_all(&decoded, Settlement::Retry(RETRY_DELAY)).await;
                return Err(err);
            }
        };
        settle_all(&decoded, Settlement::Ack).await;

        report.new = fresh.len();
        report.duplicates = decoded.len() - fresh.len();
        if report.duplicates > 0 {
            metrics::counter!(metric_names::NOTIFIER_DUPLICATES)
                .increment(report.duplicates as u64);
            tracing::debug!(
                duplicates = report.duplicates,
                "dropped already handled events"
            );
        }

        let attempts = self.deliver(&fresh).await;
        for attempt in &attempts {
            match attempt.outcome {
                Outcome::Delivered => report.delivered += 1,
                Outcome::Failed | Outcome::Dead => report.failed += 1,
            }
        }
        let tracked: Vec<Attempt> = attempts
            .into_iter()
            .filter(|a| self.channels.get(a.channel).is_some_and(|c| c.tracked()))
            .collect();
        if let Err(err) = deliveries::record_outcomes(&self.pool, &tracked).await {
            // The deliveries happened; only their bookkeeping is missing. The
            // rows stay `pending`, visible to operators and to the retry
            // worker to come, which is the honest state to leave them in.
            tracing::error!(
                error = %err,
                attempts = tracked.len(),
                "could not record delivery outcomes; the rows stay pending"
            );
        }
        event_trace::log_batch(
            decoded.iter().map(|d| (&d.envelope, &d.trace)),
            &report,
            started.elapsed(),
        );
        Ok(report)
    }

    /// Decodes every message; terminates, logs and counts those that do not.
    async fn decode(
        &self,
        messages: Vec<jetstream::Message>,
        report: &mut BatchReport,
    ) -> Vec<Decoded> {
        let mut decoded = Vec::with_capacity(messages.len());
        for message in messages {
            match serde_json::from_slice::<EventEnvelope>(&message.payload) {
                Ok(envelope) => {
                    let trace = MessageTrace::from_headers(message.headers.as_ref());
                    decoded.push(Decoded {
                        message,
                        envelope,
                        trace,
                    })
                }
                Err(_) if newer_event_type(&message.payload).is_some() => {
                    // A well-formed event of a type a newer producer added
                    // (during a rolling upgrade, say). Terminating it would
                    // lose its effects for good; it waits for a notifier
                    // that knows it instead.
                    let kind = newer_event_type(&message.payload).unwrap_or_default();
                    tracing::warn!(subject = %message.subject, %kind, "deferring an event of an unknown type");
                    metrics::counter!(metric_names::NOTIFIER_DEFERRED, "reason" => "unknown_type")
                        .increment(1);
                    settle(&message, Settlement::Retry(UNKNOWN_TYPE_DELAY)).await;
                }
                Err(err) => {
                    report.poison += 1;
                    tracing::warn!(
                        subject = %message.subject,
                        stream_sequence = message.info().ok().map(|i| i.stream_sequence),
                        error = %err,
                        "terminating an undecodable message"
                    );
                    metrics::counter!(metric_names::POISON_MESSAGES, "stream" => "events")
                        .increment(1);
                    settle(&message, Settlement::Terminate).await;
                }
            }
        }
        decoded
    }

    /// Records the batch. Answers the events to deliver, in stream order,
    /// with the channels each is planned for: the new events with effects,
    /// and every event without effects (through untracked channels only, as
    /// no tracked channel wants it).
    async fn record<'d>(
        &self,
        decoded: &'d [Decoded],
    ) -> Result<Vec<(&'d EventEnvelope, Vec<Arc<dyn Channel>>)>, BatchError> {
        // The same event twice in one batch is handled once; the inbox then
        // tells the first copy apart from events handled in earlier batches.
        let mut seen = HashSet::with_capacity(decoded.len());
        let firsts: Vec<&Decoded> = decoded
            .iter()
            .filter(|d| seen.insert(d.envelope.event_id))
            .collect();
        // Outside the transaction, so a batch of events without effects
        // opens none; see `WebhookInterest::read` for the race this keeps.
        let webhooks = WebhookInterest::read(&self.pool)
            .await
            .map_err(step("read the webhook subscriptions"))?;
        let effectful: Vec<bool> = firsts
            .iter()
            .map(|d| effects::has_effect(&d.envelope, &self.channels, &webhooks))
            .collect();
        let new_ids = if effectful.contains(&true) {
            self.record_effects(&firsts, &effectful).await?
        } else {
            HashSet::new()
        };

        let mut handled = Vec::with_capacity(firsts.len());
        for (d, effectful) in firsts.into_iter().zip(effectful) {
            if !effectful || new_ids.contains(&d.envelope.event_id) {
                let channels = self.channels.wanting(&d.envelope).cloned().collect();
                handled.push((&d.envelope, channels));
            }
        }
        Ok(handled)
    }

    /// The batch transaction, over the `firsts` marked `effectful`: answers
    /// which of them are new, their effects recorded.
    async fn record_effects(
        &self,
        firsts: &[&Decoded],
        effectful: &[bool],
    ) -> Result<HashSet<Uuid>, BatchError> {
        let with_effects: Vec<&Decoded> = firsts
            .iter()
            .zip(effectful)
            .filter(|(_, e)| **e)
            .map(|(d, _)| *d)
            .collect();
        let candidates: Vec<(Uuid, &str)> = with_effects
            .iter()
            .map(|d| (d.envelope.event_id, d.message.subject.as_str()))
            .collect();

        let mut tx = self.pool.begin().await.map_err(step("begin"))?;
        let new_ids = inbox::record_new(&mut tx, &candidates)
            .await
            .map_err(step("record events in the inbox"))?;

        let mut fresh = Vec::with_capacity(new_ids.len());
        let mut fresh_traces = Vec::with_capacity(new_ids.len());
        for d in with_effects {
            if !new_ids.contains(&d.envelope.event_id) {
                continue;
            }
            alerts::apply(&mut tx, &d.envelope)
                .await
                .map_err(step("update low-stock alerts"))?;
            let channels: Vec<Arc<dyn Channel>> =
                self.channels.wanting(&d.envelope).cloned().collect();
            fresh.push((&d.envelope, channels));
            fresh_traces.push(d.trace.context);
        }

        let planned: Vec<(&EventEnvelope, &'static str)> = fresh
            .iter()
            .flat_map(|(envelope, channels)| {
                channels
                    .iter()
                    .filter(|c| c.tracked())
                    .map(|c| (*envelope, c.name()))
            })
            .collect();
        deliveries::record_pending(&mut tx, &planned, &self.retries)
            .await
            .map_err(step("record planned deliveries"))?;
        // In the same transaction as the inbox: a redelivered event is not
        // new, so it can never yield a second webhook delivery. Only events
        // with effects get here, so only they are serialized for it.
        let new_events: Vec<&EventEnvelope> = fresh.iter().map(|(envelope, _)| *envelope).collect();
        let webhook_deliveries = webhooks::enqueue(&mut tx, &new_events, &fresh_traces)
            .await
            .map_err(step("record webhook deliveries"))?;
        tx.commit().await.map_err(step("commit"))?;
        if webhook_deliveries > 0 {
            self.webhook_wake.notify_one();
        }
        Ok(new_ids)
    }

    /// Delivers each handled event through its planned channels and counts
    /// the outcomes. Runs after the commit and the acks: the events with
    /// effects are safely recorded, so nothing here can make them be handled
    /// again (those without are only logged, and a redelivery logs them again).
    async fn deliver(&self, fresh: &[(&EventEnvelope, Vec<Arc<dyn Channel>>)]) -> Vec<Attempt> {
        // Built with a loop rather than iterator closures: closures over
        // borrowed events make the future's `Send` bound higher-ranked, which
        // rustc cannot prove, and the service future must be `Send`.
        let mut jobs = Vec::new();
        for (envelope, channels) in fresh {
            for channel in channels {
                jobs.push(deliver_one(envelope, channel.clone(), 0, &self.retries));
            }
        }
        futures::stream::iter(jobs)
            .buffered(DELIVERY_CONCURRENCY)
            .collect()
            .await
    }
}

/// Delivers one event through one channel within [`DELIVERY_TIMEOUT`], and
/// logs and counts the outcome. `attempts_before` is how often it was tried
/// already: a transient failure is retried until `retries.max_attempts`, a
/// refusal never.
pub(crate) async fn deliver_one(
    envelope: &EventEnvelope,
    channel: Arc<dyn Channel>,
    attempts_before: i32,
    retries: &RetryPolicy,
) -> Attempt {
    let result = match tokio::time::timeout(DELIVERY_TIMEOUT, channel.deliver(envelope)).await {
        Ok(result) => result,
        Err(_) => Err(DeliveryError::Transient(format!(
            "no answer within {} s",
            DELIVERY_TIMEOUT.as_secs()
        ))),
    };
    let attempts = attempts_before + 1;
    let (outcome, detail, retry_in) = match result {
        Ok(()) => (Outcome::Delivered, None, None),
        Err(err) => {
            let (outcome, retry_in) = match err {
                DeliveryError::Transient(_) if attempts < retries.max_attempts => {
                    (Outcome::Failed, Some(retries.backoff(attempts)))
                }
                _ => (Outcome::Dead, None),
            };
            tracing::warn!(
                event_id = %envelope.event_id,
                channel = channel.name(),
                attempts,
                error = %err,
                retry_in = ?retry_in,
                "delivery failed"
            );
            (outcome, Some(err.to_string()), retry_in)
        }
    };
    metrics::counter!(
        metric_names::NOTIFIER_DELIVERIES,
        "channel" => channel.name(),
        "outcome" => outcome.as_str()
    )
    .increment(1);
    Attempt {
        event_id: envelope.event_id,
        channel: channel.name(),
        outcome,
        detail,
        retry_in,
    }
}

async fn settle_all(decoded: &[Decoded], settlement: Settlement) {
    let mut settling = Vec::with_capacity(decoded.len());
    for d in decoded {
        settling.push(settle(&d.message, settlement));
    }
    futures::future::join_all(settling).await;
}

/// Tells the server what became of a message. A lost ack is harmless: the
/// message comes back after the ack wait and the inbox drops it (or, for an
/// event without effects, it is logged once more).
async fn settle(message: &jetstream::Message, settlement: Settlement) {
    let kind = match settlement {
        Settlement::Ack => AckKind::Ack,
        Settlement::Retry(delay) => AckKind::Nak(Some(delay)),
        Settlement::Terminate => AckKind::Term,
    };
    if let Err(err) = message.ack_with(kind).await {
        tracing::warn!(
            subject = %message.subject,
            settlement = ?settlement,
            error = %err,
            "could not settle a message; the server will redeliver it"
        );
    }
}

/// The `type` of a payload that is a well-formed event envelope (an
/// `event_id` uuid, an `occurred_at`, a string `type`) of a type this build
/// does not know.
fn newer_event_type(payload: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    value.get("event_id")?.as_str()?.parse::<Uuid>().ok()?;
    value.get("occurred_at")?.as_str()?;
    Some(value.get("type")?.as_str()?.to_owned())
}

#[cfg(test)]
mod unknown_type_tests {
    use super::newer_event_type;

    #[test]
    fn only_a_well_formed_envelope_counts_as_a_newer_event_type() {
        let newer = br#"{"event_id":"00000000-0000-0000-0000-000000000001",
            "occurred_at":"2026-01-01T00:00:00Z","type":"order.teleported","order_id":"x"}"#;
        assert_eq!(newer_event_type(newer).as_deref(), Some("order.teleported"));
        assert_eq!(newer_event_type(br#"{"not": "an event"}"#), None);
        assert_eq!(
            newer_event_type(br#"{"event_id":"nope","occurred_at":"x","type":"a"}"#),
            None
        );
        assert_eq!(newer_event_type(b"garbage"), None);
    }
}
