//! The outbox relay: publishes committed events to JetStream, then deletes
//! them.
//!
//! An event row exists only if the change it describes committed, and it is
//! deleted only after JetStream acknowledged it, so every change is published
//! at least once and nothing uncommitted is ever published. The event id is
//! the JetStream message id: a republish after a crash between the ack and the
//! delete is dropped by the stream's duplicate window, and consumers drop any
//! later copy by the same id.
//!
//! Each event also carries the trace of the command that caused it
//! (`traceparent`, `x-request-id`), stored with it in the outbox.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::future::IntoFuture;

use anyhow::Context;
use async_nats::jetstream::{self, context::Publish};
use orderflow_core::metric_names;
use orderflow_core::otel;
use orderflow_core::trace_context::{MessageTrace, RequestId, TraceContext};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use uuid::Uuid;

/// Most events one relay round publishes.
const RELAY_BATCH: i64 = 1000;
/// The relay vacuums the outbox itself once it deleted this many rows, at
/// most every [`VACUUM_INTERVAL`].
const VACUUM_AFTER_ROWS: usize = 20_000;
const VACUUM_INTERVAL: Duration = Duration::from_secs(2);
/// The advisory lock that lets one relay at a time publish, so events keep
/// their commit order on the stream.
const RELAY_LOCK: (i32, i32) = (0x4f46_5232, 0); // "OFR2"

/// Relays until `shutdown`, then flushes once more.
pub async fn run(
    pool: PgPool,
    js: jetstream::Context,
    wakeup: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut deleted_since_vacuum = 0;
    let mut last_vacuum = Instant::now();
    loop {
        let stopping = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = wakeup.notified() => false,
            _ = tick.tick() => {
                report_backlog(&pool).await;
                false
            }
        };
        deleted_since_vacuum += drain(&pool, &js).await;
        if deleted_since_vacuum >= VACUUM_AFTER_ROWS && last_vacuum.elapsed() >= VACUUM_INTERVAL {
            vacuum(&pool).await;
            deleted_since_vacuum = 0;
            last_vacuum = Instant::now();
        }
        if stopping {
            return;
        }
    }
}

/// Relays until the outbox is empty or a round fails; returns how many
/// events it published (and deleted).
async fn drain(pool: &PgPool, js: &jetstream::Context) -> usize {
    let mut published = 0;
    loop {
        match relay_once(pool, js).await {
            Ok(n) if n == RELAY_BATCH as usize => published += n,
            Ok(n) => return published + n,
            Err(err) => {
                warn!(
                    err = format!("{err:#}"),
                    "outbox relay round failed; will retry"
                );
                return published;
            }
        }
    }
}

/// Reclaims the deleted rows. Every event passes through the outbox, so under
/// load it churns thousands of rows a second while holding only a few; each
/// relay round reads it from its oldest id up, through every deleted row not
/// yet vacuumed. Left to autovacuum (when it runs at all: some servers have
/// it off) the dead rows piled up to hundreds of megabytes and a round read
/// thousands of pages to find nothing. `skip_locked`: a vacuum already under
/// way does the job.
async fn vacuum(pool: &PgPool) {
    if let Err(err) = sqlx::query("vacuum (skip_locked) outbox")
        .execute(pool)
        .await
    {
        warn!(%err, "could not vacuum the outbox");
    }
}

/// Publishes the oldest events and deletes those JetStream acknowledged.
/// Returns how many it published.
pub async fn relay_once(pool: &PgPool, js: &jetstream::Context) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await.context("begin relay transaction")?;
    let leader: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1, $2)")
        .bind(RELAY_LOCK.0)
        .bind(RELAY_LOCK.1)
        .fetch_one(&mut *tx)
        .await
        .context("take the relay lock")?;
    if !leader {
        return Ok(0);
    }
    // The delete need not wait for the disk: lost in a crash, it only means
    // the events are published again, which the stream's duplicate window
    // and every consumer's inbox drop. One flush less per round, and with
    // several partitions committing there are many rounds.
    sqlx::query("set local synchronous_commit = off")
        .execute(&mut *tx)
        .await
        .context("relax the relay's commit")?;
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "select id, event_id, subject, payload::text as payload, traceparent, request_id
         from outbox order by id limit $1",
    )
    .bind(RELAY_BATCH)
    .fetch_all(&mut *tx)
    .await
    .context("read the outbox")?;
    if rows.is_empty() {
        return Ok(0);
    }
    // All publishes go out before any ack is awaited: hundreds in flight,
    // one round trip's wait for the lot.
    let mut pending = Vec::with_capacity(rows.len());
    // Open until the acks are in, while spans are exported.
    let mut spans = Vec::new();
    for row in &rows {
        let (event_id, subject) = (&row.event_id, &row.subject);
        let headers = event_headers(row, &mut spans);
        let ack = js
            .send_publish(
                subject.clone(),
                Publish::build()
                    .headers(headers)
                    .message_id(event_id.to_string())
                    .payload(row.payload.clone().into()),
            )
            .await
            .with_context(|| format!("publish event {event_id}"))?;
        pending.push(ack);
    }
    for ack in futures::future::join_all(pending.into_iter().map(|ack| ack.into_future())).await {
        ack.context("JetStream did not acknowledge an event")?;
    }
    drop(spans);
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    sqlx::query("delete from outbox where id = any($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .context("delete relayed events")?;
    tx.commit().await.context("commit relay transaction")?;
    metrics::counter!(metric_names::OUTBOX_PUBLISHED).increment(rows.len() as u64);
    Ok(rows.len())
}

/// One outbox row.
#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    event_id: Uuid,
    subject: String,
    /// The event's JSON as PostgreSQL prints it, sent as it is: decoding it
    /// into a `Value` only to encode it again was a tenth of the processor's
    /// time under load.
    payload: String,
    /// The context of the command that caused the event, if it had one.
    traceparent: Option<String>,
    request_id: Option<String>,
}

/// The event's `traceparent` (a child of the stored context: the span of
/// this publish while spans are exported, pushed onto `spans`) and
/// `x-request-id` headers. An event with no stored context (a batch's stock
/// change) gets neither a context nor a span.
fn event_headers(row: &OutboxRow, spans: &mut Vec<tracing::Span>) -> async_nats::HeaderMap {
    let stored = row
        .traceparent
        .as_deref()
        .and_then(|t| TraceContext::parse(t).ok());
    let context = stored.map(|parent| {
        if otel::enabled() {
            let span = tracing::info_span!(
                target: otel::SPAN_TARGET,
                "relay",
                otel.name = "event.publish",
                otel.kind = "producer",
                event_id = %row.event_id,
                subject = %row.subject,
            );
            let context = otel::adopt(&span, Some(&parent));
            spans.push(span);
            context
        } else {
            parent.child()
        }
    });
    let mut headers = async_nats::HeaderMap::new();
    MessageTrace {
        context,
        request_id: row.request_id.as_deref().and_then(RequestId::parse),
    }
    .inject(&mut headers);
    headers
}

/// The backlog as the span of ids waiting, read from the two ends of the
/// primary key: `count(*)` reads the whole table, which during an outage of
/// NATS holds every event since. The span exceeds the count only by the ids
/// of rolled-back batches that fall between the ends.
async fn report_backlog(pool: &PgPool) {
    if let Ok(count) =
        sqlx::query_scalar::<_, i64>("select coalesce(max(id) - min(id) + 1, 0) from outbox")
            .fetch_one(pool)
            .await
    {
        metrics::gauge!(metric_names::OUTBOX_BACKLOG).set(count as f64);
    }
}
