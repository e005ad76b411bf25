//! The `notification_deliveries` ledger: one row per (event, channel), with
//! the event itself, so a delivery can be retried without the stream.
//!
//! Rows are written as `pending` in the batch transaction, before anything is
//! delivered, due for a retry only after [`RetryPolicy::orphan_grace`] (the
//! first attempt runs right after the commit). An attempt then records
//! `delivered`; a transient failure `failed`, due again after a backoff; a
//! refusal, or the last allowed attempt, `dead`. A crash between the commit
//! and the first attempt leaves a `pending` row that [`retry`] picks up once
//! its grace has passed, so no notification is lost and none is attempted
//! twice at once.

use std::time::Duration;

use orderflow_core::event::EventEnvelope;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// How channel deliveries are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before a transiently failing delivery is dead.
    pub max_attempts: i32,
    /// Delay before the first retry; doubled for each further one.
    pub backoff_base: Duration,
    /// The longest delay between two attempts.
    pub backoff_cap: Duration,
    /// How long a `pending` row is left to its first attempt before the retry
    /// worker takes it as orphaned by a crash; well above the delivery timeout.
    pub orphan_grace: Duration,
    /// How often the retry worker looks for due deliveries.
    pub poll: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(30 * 60),
            orphan_grace: Duration::from_secs(60),
            poll: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The delay after the `attempts`-th failed attempt.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let doublings = attempts.saturating_sub(1).clamp(0, 20) as u32;
        self.backoff_base
            .saturating_mul(1 << doublings)
            .min(self.backoff_cap)
    }
}

/// A delivery's recorded outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Failed for now; tried again after a backoff.
    Failed,
    /// Refused, or out of attempts: never tried again.
    Dead,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Delivered, Outcome::Failed, Outcome::Dead];

    /// The value stored in `notification_deliveries.outcome` and used as the
    /// `outcome` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            Outcome::Dead => "dead",
        }
    }
}

/// The result of one delivery, to be written back to its row.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub event_id: Uuid,
    pub channel: &'static str,
    pub outcome: Outcome,
    /// Why it failed; `None` when delivered.
    pub detail: Option<String>,
    /// When to try again, for `Failed`.
    pub retry_in: Option<Duration>,
}

/// Records the planned deliveries as `pending`, with their events, in one
/// statement.
pub async fn record_pending(
    conn: &mut PgConnection,
    planned: &[(&EventEnvelope, &'static str)],
    policy: &RetryPolicy,
) -> Result<(), sqlx::Error> {
    if planned.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = planned.iter().map(|(e, _)| e.event_id).collect();
    let channels: Vec<&str> = planned.iter().map(|(_, c)| *c).collect();
    let payloads: Vec<serde_json::Value> = planned
        .iter()
        .map(|(e, _)| serde_json::to_value(e).expect("events serialize"))
        .collect();
    // The events are new (the inbox said so), so a conflict cannot happen
    // unless a row was written by hand; it is then left as it is.
    sqlx::query(
        "insert into notification_deliveries (event_id, channel, outcome, payload, next_attempt_at)
         select event_id, channel, 'pending', payload, now() + make_interval(secs => $4)
         from unnest($1::uuid[], $2::text[], $3::jsonb[]) as d(event_id, channel, payload)
         on conflict on constraint notification_deliveries_event_channel_key do nothing",
    )
    .bind(&ids)
    .bind(&channels)
    .bind(&payloads)
    .bind(policy.orphan_grace.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the outcomes of attempted deliveries, in one statement. Rows
/// already delivered or dead never change.
pub async fn record_outcomes(pool: &PgPool, attempts: &[Attempt]) -> Result<(), sqlx::Error> {
    if attempts.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = attempts.iter().map(|a| a.event_id).collect();
    let channels: Vec<&str> = attempts.iter().map(|a| a.channel).collect();
    let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
    let details: Vec<Option<&str>> = attempts.iter().map(|a| a.detail.as_deref()).collect();
    let retry_in: Vec<Option<f64>> = attempts
        .iter()
        .map(|a| a.retry_in.map(|d| d.as_secs_f64()))
        .collect();
    sqlx::query(
        "update notification_deliveries d
         set outcome = u.outcome, detail = u.detail, attempts = d.attempts + 1,
             next_attempt_at = now() + make_interval(secs => u.retry_in),
             updated_at = now()
         from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::float8[])
             as u(event_id, channel, outcome, detail, retry_in)
         where d.event_id = u.event_id and d.channel = u.channel
           and d.outcome in ('pending', 'failed')",
    )
    .bind(&ids)
    .bind(&channels)
    .bind(&outcomes)
    .bind(&details)
    .bind(&retry_in)
    .execute(pool)
    .await?;
    Ok(())
}

/// A delivery due for another attempt.
#[derive(Debug)]
pub struct Due {
    pub event: EventEnvelope,
    pub channel: String,
    /// Attempts made so far.
    pub attempts: i32,
}

/// Leases up to `limit` due deliveries: `failed` ones whose backoff passed and
/// `pending` ones orphaned past their grace. The lease (pushing
/// `next_attempt_at` out by `lease`) keeps other notifier replicas off them
/// while this one tries.
pub async fn lease_due(
    pool: &PgPool,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Due>, sqlx::Error> {
    let rows: Vec<(serde_json::Value, String, i32)> = sqlx::query_as(
        "with due as (
            select event_id, channel from notification_deliveries
            where outcome in ('pending', 'failed') and next_attempt_at <= now()
              and payload is not null
            order by next_attempt_at
            limit $1
            for update skip locked)
         update notification_deliveries d
         set next_attempt_at = now() + make_interval(secs => $2), updated_at = now()
         from due
         where d.event_id = due.event_id and d.channel = due.channel
         returning d.payload, d.channel, d.attempts",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(payload, channel, attempts)| {
            match serde_json::from_value::<EventEnvelope>(payload) {
                Ok(event) => Some(Due {
                    event,
                    channel,
                    attempts,
                }),
                Err(err) => {
                    tracing::warn!(%channel, %err, "a stored delivery no longer decodes; left as it is");
                    None
                }
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_its_base_up_to_its_cap() {
        let policy = RetryPolicy {
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(300),
            ..RetryPolicy::default()
        };
        let delays: Vec<u64> = (1..=6).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 300, 300]);
    }
}
