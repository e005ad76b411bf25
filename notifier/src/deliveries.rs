//! The `notification_deliveries` ledger: one row per (event, channel).
//!
//! Rows are written as `pending` in the batch transaction, before anything is
//! delivered, and updated to `delivered` or `failed` afterwards. A crash
//! between the commit and the update therefore leaves visible `pending` rows
//! rather than silently lost notifications. Nothing retries them yet: the
//! retry worker that picks up `pending` and retryable `failed` rows comes with
//! the webhook issue, the first channel that can fail for real.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A delivery's recorded outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Failed,
}

impl Outcome {
    /// The value stored in `notification_deliveries.outcome` and used as the
    /// `outcome` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
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
}

/// Records the planned deliveries as `pending`, in one statement.
pub async fn record_pending(
    conn: &mut PgConnection,
    planned: &[(Uuid, &'static str)],
) -> Result<(), sqlx::Error> {
    if planned.is_empty() {
        return Ok(());
    }
    let (ids, channels): (Vec<Uuid>, Vec<&str>) = planned.iter().copied().unzip();
    // The events are new (the inbox said so), so a conflict cannot happen
    // unless a row was written by hand; it is then left as it is.
    sqlx::query(
        "insert into notification_deliveries (event_id, channel, outcome)
         select event_id, channel, 'pending'
         from unnest($1::uuid[], $2::text[]) as d(event_id, channel)
         on conflict on constraint notification_deliveries_event_channel_key do nothing",
    )
    .bind(&ids)
    .bind(&channels)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the outcomes of attempted deliveries, in one statement. Only rows
/// still `pending` change, so a late writer can never overwrite a result.
pub async fn record_outcomes(pool: &PgPool, attempts: &[Attempt]) -> Result<(), sqlx::Error> {
    if attempts.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = attempts.iter().map(|a| a.event_id).collect();
    let channels: Vec<&str> = attempts.iter().map(|a| a.channel).collect();
    let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
    let details: Vec<Option<&str>> = attempts.iter().map(|a| a.detail.as_deref()).collect();
    sqlx::query(
        "update notification_deliveries d
         set outcome = u.outcome, detail = u.detail
         from unnest($1::uuid[], $2::text[], $3::text[], $4::text[])
             as u(event_id, channel, outcome, detail)
         where d.event_id = u.event_id and d.channel = u.channel and d.outcome = 'pending'",
    )
    .bind(&ids)
    .bind(&channels)
    .bind(&outcomes)
    .bind(&details)
    .execute(pool)
    .await?;
    Ok(())
}
