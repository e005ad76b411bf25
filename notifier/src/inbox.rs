//! The inbox: which events have already had their effects.
//!
//! JetStream delivers at least once and producers republish with the same
//! event id, so the notifier sees some events more than once. Recording an
//! event's id in the same transaction as its effects makes each effect happen
//! once: the insert that finds the id already present is the duplicate check.

use std::collections::HashSet;

use sqlx::PgConnection;
use uuid::Uuid;

/// Records `events` (id and subject) as handled and returns the ids that were
/// not recorded before: the events whose effects this transaction must apply.
///
/// One statement for the whole batch. The ids are inserted in sorted order so
/// two notifier replicas handling overlapping batches lock the same keys in the
/// same order and cannot deadlock; the second one waits for the first to commit
/// and then sees the ids as taken. `events` must not repeat an id.
pub async fn record_new(
    conn: &mut PgConnection,
    events: &[(Uuid, &str)],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    if events.is_empty() {
        return Ok(HashSet::new());
    }
    let mut sorted: Vec<&(Uuid, &str)> = events.iter().collect();
    sorted.sort_by_key(|(id, _)| *id);
    let ids: Vec<Uuid> = sorted.iter().map(|(id, _)| *id).collect();
    let subjects: Vec<&str> = sorted.iter().map(|(_, subject)| *subject).collect();
    let new: Vec<Uuid> = sqlx::query_scalar(
        "insert into processed_events (event_id, subject)
         select event_id, subject
         from unnest($1::uuid[], $2::text[]) with ordinality as e(event_id, subject, n)
         order by n
         on conflict (event_id) do nothing
         returning event_id",
    )
    .bind(&ids)
    .bind(&subjects)
    .fetch_all(conn)
    .await?;
    Ok(new.into_iter().collect())
}
