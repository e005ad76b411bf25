//! Webhooks: HTTP endpoints managers register, and the at-least-once
//! delivery of matching events to them.
//!
//! - [`enqueue`] (called in the batch transaction of [`crate::handler`]) writes
//!   one `webhook_deliveries` row per new event and matching active endpoint,
//!   so a redelivered event never yields a second delivery;
//! - [`dispatcher`] leases due rows, POSTs them concurrently, records every
//!   attempt, retries with exponential backoff and jitter, and moves a
//!   delivery to `dead` after its last attempt;
//! - [`signature`] signs the requests (and verifies them, for receivers).

pub mod dispatcher;
pub mod signature;

use std::time::Duration;

use orderflow_core::event::{Event, EventEnvelope};
use orderflow_core::trace_context::TraceContext;
use sqlx::PgConnection;

/// The `channel` label of webhook deliveries in
/// [`orderflow_core::metric_names::NOTIFIER_DELIVERIES`].
pub const CHANNEL: &str = "webhook";

/// Gauge: webhook deliveries waiting to be delivered (state `pending`).
pub const BACKLOG_METRIC: &str = orderflow_core::metric_names::WEBHOOK_BACKLOG;

/// Gauge: webhook deliveries that gave up (state `dead`) and await a replay.
pub const DEAD_LETTERS_METRIC: &str = orderflow_core::metric_names::WEBHOOK_DEAD_LETTERS;

/// Histogram: seconds from a request's start to its answer or timeout.
pub const REQUEST_DURATION_METRIC: &str = orderflow_core::metric_names::WEBHOOK_REQUEST_DURATION;

/// Request headers, named once for the dispatcher, the docs and receivers.
pub mod headers {
    pub const EVENT_ID: &str = "orderflow-event-id";
    pub const EVENT_TYPE: &str = "orderflow-event-type";
    pub const DELIVERY_ATTEMPT: &str = "orderflow-delivery-attempt";
    pub const TIMESTAMP: &str = "orderflow-timestamp";
    pub const SIGNATURE: &str = "orderflow-signature";
}

/// Why the webhook settings could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{name} must be a positive integer, not {value:?}")]
pub struct ConfigError {
    name: &'static str,
    value: String,
}

/// The dispatcher's tunables.
#[derive(Debug, Clone)]
pub struct Config {
    /// Attempts before a delivery is dead (`ORDERFLOW_WEBHOOK_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// The delay after the first failure, doubled after each further one
    /// (`ORDERFLOW_WEBHOOK_BACKOFF_MS`).
    pub backoff_base: Duration,
    /// The longest delay between two attempts.
    pub backoff_cap: Duration,
    /// The longest one request may take, connection included
    /// (`ORDERFLOW_WEBHOOK_TIMEOUT_MS`).
    pub timeout: Duration,
    /// How long a leased delivery is hidden from other dispatchers; a
    /// dispatcher that dies mid-request loses its leases after this. Always
    /// at least the timeout plus a margin, whatever is configured.
    pub lease: Duration,
    /// How often the dispatcher looks for due deliveries when nothing woke it.
    pub poll_interval: Duration,
    /// Most requests in flight at once, over all endpoints.
    pub max_in_flight: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff_base: Duration::from_millis(1000),
            backoff_cap: Duration::from_secs(15 * 60),
            timeout: Duration::from_millis(5000),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
            max_in_flight: 64,
        }
    }
}

impl Config {
    /// The defaults, overridden by `ORDERFLOW_WEBHOOK_MAX_ATTEMPTS`,
    /// `ORDERFLOW_WEBHOOK_BACKOFF_MS` and `ORDERFLOW_WEBHOOK_TIMEOUT_MS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let read = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            match lookup(name) {
                None => Ok(None),
                Some(value) => match value.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Some(n)),
                    _ => Err(ConfigError { name, value }),
                },
            }
        };
        let mut config = Self::default();
        if let Some(n) = read("ORDERFLOW_WEBHOOK_MAX_ATTEMPTS")? {
            config.max_attempts = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(ms) = read("ORDERFLOW_WEBHOOK_BACKOFF_MS")? {
            config.backoff_base = Duration::from_millis(ms);
        }
        if let Some(ms) = read("ORDERFLOW_WEBHOOK_TIMEOUT_MS")? {
            config.timeout = Duration::from_millis(ms);
        }
        Ok(config)
    }

    /// The lease actually taken: never shorter than a request can last, or a
    /// second dispatcher would send the same delivery while the first waits.
    pub fn effective_lease(&self) -> Duration {
        self.lease.max(self.timeout + Duration::from_secs(5))
    }

    /// The delay before attempt `failed + 1`, after `failed` failures:
    /// `base * 2^(failed-1)`, capped, then scaled by `jitter` in
    /// `[0.75, 1.25]` so endpoints that failed together do not retry in
    /// lockstep.
    pub fn backoff(&self, failed: u32, jitter: f64) -> Duration {
        let exponent = failed.saturating_sub(1).min(30);
        let raw = self.backoff_base.saturating_mul(1u32 << exponent);
        raw.min(self.backoff_cap).mul_f64(jitter.clamp(0.75, 1.25))
    }
}

/// What per-endpoint order is kept for: events with the same key reach one
/// endpoint in the order they were recorded. The order id for order events,
/// the sku for stock events.
pub fn ordering_key(event: &Event) -> String {
    match event {
        Event::OrderConfirmed(e) => e.order_id.to_string(),
        Event::OrderRejected(e) => e.order_id.to_string(),
        Event::OrderCancelled(e) | Event::OrderFulfilled(e) => e.order_id.to_string(),
        Event::StockChanged(e) => format!("sku:{}", e.sku),
        Event::StockLow(e) | Event::StockRecovered(e) => format!("sku:{}", e.sku),
    }
}

/// Records one pending delivery per (event, active endpoint that wants its
/// type), in one statement, inside the caller's batch transaction. `events`
/// are the batch's new events in stream order; rows get ascending ids in
/// that order, which is the order the dispatcher keeps per endpoint and key.
/// Answers how many deliveries were recorded. `traces` (aligned with
/// `events`) are the contexts each event's requests continue.
pub async fn enqueue(
    conn: &mut PgConnection,
    events: &[&EventEnvelope],
    traces: &[Option<TraceContext>],
) -> Result<u64, sqlx::Error> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut keys = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let traceparents: Vec<Option<String>> = (0..events.len())
        .map(|i| traces.get(i).copied().flatten().map(|c| c.to_string()))
        .collect();
    for envelope in events {
        ids.push(envelope.event_id);
        types.push(envelope.event.kind());
        keys.push(ordering_key(&envelope.event));
        // The same JSON the EVENTS stream carries: the envelope.
        payloads.push(serde_json::to_string(envelope).expect("an envelope always serializes"));
    }
    let inserted = sqlx::query(
        "insert into webhook_deliveries (webhook_id, event_id, event_type, ordering_key, payload,
                                         traceparent)
         select w.id, e.event_id, e.event_type, e.ordering_key, e.payload::jsonb, e.traceparent
         from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
             with ordinality as e(event_id, event_type, ordering_key, payload, traceparent, n)
         join webhooks w on w.active and (e.event_type = any (w.events) or '*' = any (w.events))
         order by e.n, w.id
         on conflict on constraint webhook_deliveries_webhook_event_key do nothing",
    )
    .bind(&ids)
    .bind(&types)
    .bind(&keys)
    .bind(&payloads)
    .bind(&traceparents)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let config = Config {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(500),
            ..Config::default()
        };
        assert_eq!(config.backoff(1, 1.0), Duration::from_millis(100));
        assert_eq!(config.backoff(2, 1.0), Duration::from_millis(200));
        assert_eq!(config.backoff(3, 1.0), Duration::from_millis(400));
        assert_eq!(config.backoff(4, 1.0), Duration::from_millis(500));
        assert_eq!(config.backoff(60, 1.0), Duration::from_millis(500));
        assert_eq!(config.backoff(2, 0.75), Duration::from_millis(150));
        assert_eq!(config.backoff(2, 9.0), Duration::from_millis(250));
    }

    #[test]
    fn settings_come_from_the_environment_and_bad_ones_are_refused() {
        let config = Config::from_lookup(|name| match name {
            "ORDERFLOW_WEBHOOK_MAX_ATTEMPTS" => Some("3".into()),
            "ORDERFLOW_WEBHOOK_TIMEOUT_MS" => Some("250".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.timeout, Duration::from_millis(250));
        assert_eq!(config.backoff_base, Duration::from_millis(1000));
        assert!(config.effective_lease() >= config.timeout);
        assert!(Config::from_lookup(|_| Some("zero".into())).is_err());
        assert!(Config::from_lookup(|_| Some("0".into())).is_err());
    }
}
