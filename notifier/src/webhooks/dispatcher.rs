//! The webhook dispatcher: leases due deliveries, sends them, and records
//! what happened.
//!
//! Every request runs as its own future with its own timeout, and the loop
//! keeps leasing while requests are in flight, so an endpoint that is slow or
//! never answers delays only its own deliveries. A delivery is leased with
//! `for update skip locked` and a `leased_until`, so several notifier replicas
//! share the work without sending one delivery twice at once, and a replica
//! that dies mid-request loses its leases when they expire.
//!
//! Per endpoint, deliveries with the same ordering key (an order, a product)
//! go out in the order they were recorded: a delivery is not leased while an
//! earlier one of the same endpoint and key is still pending.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use orderflow_core::metric_names;
use orderflow_core::trace_context::TRACEPARENT;
use rand::Rng;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{headers, signature, Config, BACKLOG_METRIC, CHANNEL, DEAD_LETTERS_METRIC};
use crate::retry::Backoff;

/// How often the backlog and dead-letter gauges are refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(2);

/// The longest error text kept per attempt.
const MAX_ERROR_LEN: usize = 500;

/// A delivery leased for one attempt.
#[derive(Debug, sqlx::FromRow)]
struct Leased {
    id: i64,
    event_id: Uuid,
    event_type: String,
    payload: serde_json::Value,
    /// Attempts made before this one.
    attempts: i32,
    url: String,
    secret: String,
    /// The context the event's handling passed on, if it carried one.
    traceparent: Option<String>,
}

/// What one attempt came to.
#[derive(Debug)]
struct Answer {
    status: Option<u16>,
    error: Option<String>,
    duration: Duration,
}

impl Answer {
    fn delivered(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Sends webhook deliveries; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    pool: PgPool,
    client: reqwest::Client,
    config: Config,
    /// Notified after a batch recorded deliveries, so they go out at once
    /// rather than at the next poll.
    wake: Arc<Notify>,
    /// Names this dispatcher in logs; not used for correctness.
    holder: Uuid,
}

impl Dispatcher {
    pub fn new(pool: PgPool, config: Config, wake: Arc<Notify>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // Receivers answer the delivery, not a redirect target of theirs.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("orderflow-notifier/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            pool,
            client,
            config,
            wake,
            holder: Uuid::now_v7(),
        })
    }

    /// Sends due deliveries until `shutdown` fires, then lets the requests in
    /// flight finish (each is bounded by the timeout) and records them.
    pub async fn run(&self, shutdown: &CancellationToken) {
        tracing::info!(holder = %self.holder, config = ?self.config, "webhook dispatcher running");
        let mut in_flight = FuturesUnordered::new();
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let mut gauges_at = Instant::now() - GAUGE_INTERVAL;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            if gauges_at.elapsed() >= GAUGE_INTERVAL {
                gauges_at = Instant::now();
                driving(&mut in_flight, self.refresh_gauges()).await;
            }
            let room = self.config.max_in_flight.saturating_sub(in_flight.len());
            let mut leased_any = false;
            if room > 0 {
                match driving(&mut in_flight, self.lease(room)).await {
                    Ok(leased) => {
                        backoff.reset();
                        leased_any = !leased.is_empty();
                        for delivery in leased {
                            in_flight.push(self.attempt(delivery));
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "could not lease webhook deliveries");
                        if !driving(&mut in_flight, backoff.wait(shutdown)).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            // A finished request may have unblocked the next delivery of its
            // endpoint and key, so it is a reason to lease again too.
            let poll = if leased_any {
                Duration::ZERO
            } else {
                self.config.poll_interval
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
        while in_flight.next().await.is_some() {}
        tracing::info!("webhook dispatcher stopped");
    }

    /// Leases up to `limit` due deliveries whose endpoint is active and which
    /// have no earlier pending delivery of the same endpoint and key.
    async fn lease(&self, limit: usize) -> Result<Vec<Leased>, sqlx::Error> {
        sqlx::query_as::<_, Leased>(
            "with due as (
                 select d.id
                 from webhook_deliveries d
                 join webhooks w on w.id = d.webhook_id and w.active
                 where d.state = 'pending'
                   and d.next_attempt_at <= now()
                   and (d.leased_until is null or d.leased_until < now())
                   and not exists (
                       select 1 from webhook_deliveries earlier
                       where earlier.webhook_id = d.webhook_id
                         and earlier.ordering_key = d.ordering_key
                         and earlier.state = 'pending'
                         and earlier.id < d.id)
                 order by d.id
                 limit $1
                 for update of d skip locked
             )
             update webhook_deliveries d
             set leased_until = now() + make_interval(secs => $2)
             from due, webhooks w
             where d.id = due.id and w.id = d.webhook_id
             returning d.id, d.event_id, d.event_type, d.payload, d.attempts, w.url, w.secret,
                       d.traceparent",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(self.config.effective_lease().as_secs_f64())
        .fetch_all(&self.pool)
        .await
    }

    /// Sends one delivery and records the attempt and its consequence.
    async fn attempt(&self, delivery: Leased) {
        let attempt = delivery.attempts + 1;
        let answer = self.send(&delivery, attempt).await;
        let delivered = answer.delivered();
        let outcome = if delivered {
            "delivered"
        } else if attempt >= i32::try_from(self.config.max_attempts).unwrap_or(i32::MAX) {
            "dead"
        } else {
            "failed"
        };
        let delay = self
            .config
            .backoff(attempt as u32, rand::thread_rng().gen_range(0.75..=1.25));
        if !delivered {
            tracing::warn!(
                delivery_id = delivery.id,
                event_id = %delivery.event_id,
                attempt,
                status = answer.status,
                error = answer.error.as_deref(),
                outcome,
                "webhook delivery failed"
            );
        }
        metrics::counter!(metric_names::NOTIFIER_DELIVERIES, "channel" => CHANNEL, "outcome" => outcome)
            .increment(1);
        metrics::histogram!(super::REQUEST_DURATION_METRIC).record(answer.duration.as_secs_f64());
        if let Err(err) = self
            .record(&delivery, attempt, &answer, outcome, delay)
            .await
        {
            // The lease expires and the delivery is sent again: at least
            // once, with the same event id for the receiver to dedupe.
            tracing::error!(delivery_id = delivery.id, error = %err, "could not record a webhook attempt");
        }
    }

    async fn send(&self, delivery: &Leased, attempt: i32) -> Answer {
        let body = serde_json::to_vec(&delivery.payload).expect("JSON always serializes");
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signature::sign(&delivery.secret, timestamp, &body);
        // Receivers that trace can join the order's trace.
        let (traceparent, _span) =
            crate::event_trace::webhook_context(delivery.traceparent.as_deref(), delivery.event_id);
        let mut request = self.client.post(&delivery.url);
        if let Some(traceparent) = traceparent {
            request = request.header(TRACEPARENT, traceparent);
        }
        let started = Instant::now();
        let sent = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(headers::EVENT_ID, delivery.event_id.to_string())
            .header(headers::EVENT_TYPE, &delivery.event_type)
            .header(headers::DELIVERY_ATTEMPT, attempt.to_string())
            .header(headers::TIMESTAMP, timestamp.to_string())
            .header(headers::SIGNATURE, signature)
            .body(body)
            .send()
            .await;
        let duration = started.elapsed();
        match sent {
            Ok(response) => {
                let status = response.status();
                Answer {
                    status: Some(status.as_u16()),
                    error: (!status.is_success()).then(|| format!("answered {status}")),
                    duration,
                }
            }
            Err(err) => {
                let error = if err.is_timeout() {
                    format!("no answer within {} ms", self.config.timeout.as_millis())
                } else {
                    // The chain says why (refused, reset, DNS), not just "error sending request".
                    let mut text = err.to_string();
                    let mut source = std::error::Error::source(&err);
                    while let Some(inner) = source {
                        text.push_str(": ");
                        text.push_str(&inner.to_string());
                        source = inner.source();
                    }
                    text
                };
                Answer {
                    status: None,
                    error: Some(truncate(error)),
                    duration,
                }
            }
        }
    }

    /// Writes the attempt and moves the delivery on, in one statement. Only
    /// a delivery still pending at the same attempt count changes, so a
    /// dispatcher whose lease expired cannot overwrite a later result.
    async fn record(
        &self,
        delivery: &Leased,
        attempt: i32,
        answer: &Answer,
        outcome: &str,
        delay: Duration,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "with attempt as (
                 insert into webhook_attempts (delivery_id, attempt, status_code, error, duration_ms)
                 values ($1, $2, $3, $4, $5)
             )
             update webhook_deliveries
             set attempts = $2,
                 state = case $6 when 'delivered' then 'delivered'
                                 when 'dead' then 'dead' else 'pending' end,
                 delivered_at = case when $6 = 'delivered' then now() end,
                 dead_at = case when $6 = 'dead' then now() end,
                 next_attempt_at = case when $6 = 'failed'
                     then now() + make_interval(secs => $7) else next_attempt_at end,
                 leased_until = null,
                 last_status = $3,
                 last_error = $4
             where id = $1 and state = 'pending' and attempts = $2 - 1",
        )
        .bind(delivery.id)
        .bind(attempt)
        .bind(answer.status.map(i32::from))
        .bind(answer.error.as_deref())
        .bind(i32::try_from(answer.duration.as_millis()).unwrap_or(i32::MAX))
        .bind(outcome)
        .bind(delay.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn refresh_gauges(&self) {
        let counts: Result<(i64, i64), _> = sqlx::query_as(
            "select count(*) filter (where state = 'pending'),
                    count(*) filter (where state = 'dead')
             from webhook_deliveries where state in ('pending', 'dead')",
        )
        .fetch_one(&self.pool)
        .await;
        match counts {
            Ok((pending, dead)) => {
                metrics::gauge!(BACKLOG_METRIC).set(pending as f64);
                metrics::gauge!(DEAD_LETTERS_METRIC).set(dead as f64);
            }
            Err(err) => tracing::debug!(error = %err, "could not count webhook deliveries"),
        }
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Awaits `work` while still driving the requests in flight. A request holds
/// a pool connection while it records its outcome; left unpolled while the
/// loop waits for a connection of its own, it would hold it for good, and a
/// few of them starve the whole notifier of connections (seen after the
/// database link stalled for a second and a half: every query in the
/// notifier then timed out waiting for the pool, forever).
async fn driving<F, T>(in_flight: &mut FuturesUnordered<F>, work: impl Future<Output = T>) -> T
where
    F: Future<Output = ()>,
{
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return output,
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
        }
    }
}
