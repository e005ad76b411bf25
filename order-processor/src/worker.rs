//! The worker of one partition: pull a batch, decide it in one transaction,
//! ack it, repeat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures::StreamExt;
use orderflow_core::broker;
use orderflow_core::command::OrderCommand;
use orderflow_core::metric_names;
use orderflow_core::naming::Naming;
use orderflow_core::otel;
use orderflow_core::trace_context::{Aligned, MessageTrace};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::batch::{decide_and_commit, BatchError, BatchReport, QueuedCommand};

/// Why a worker stopped other than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("partition {0} was taken over by another worker")]
    LeaseLost(u16),
    #[error("the message stream of partition {partition} failed: {message}")]
    Stream { partition: u16, message: String },
    #[error("shut down while the batch in hand could not be committed; it will be redelivered")]
    Abandoned,
}

/// One partition's worker under one lease epoch.
pub struct Worker {
    pub partition: u16,
    pub epoch: i64,
    pub pool: PgPool,
    pub naming: Naming,
    pub batch_max: usize,
    /// Woken after every commit so the outbox relay publishes at once.
    pub relay_wakeup: Arc<Notify>,
}

impl Worker {
    /// Runs until `stop` fires (between batches, never inside one) or the
    /// worker can no longer go on.
    pub async fn run(
        self,
        mut messages: pull::Stream,
        stop: CancellationToken,
    ) -> Result<(), WorkerError> {
        loop {
            // Only this wait is cancelled by shutdown; a batch in hand is
            // always finished and acked.
            let first = tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(()),
                next = messages.next() => next,
            };
            let mut batch = vec![self.received(first)?];
            while batch.len() < self.batch_max {
                match broker::ready_now(&mut messages) {
                    Some(next) => batch.push(self.received(next)?),
                    None => break,
                }
            }
            self.handle(batch, &stop).await?;
        }
    }

    fn received(
        &self,
        next: Option<Result<jetstream::Message, pull::MessagesError>>,
    ) -> Result<jetstream::Message, WorkerError> {
        match next {
            Some(Ok(message)) => Ok(message),
            Some(Err(err)) => Err(WorkerError::Stream {
                partition: self.partition,
                message: err.to_string(),
            }),
            None => Err(WorkerError::Stream {
                partition: self.partition,
                message: "the message stream ended".into(),
            }),
        }
    }

    #[tracing::instrument(skip_all, fields(partition = self.partition, batch_size = batch.len()))]
    async fn handle(
        &self,
        batch: Vec<jetstream::Message>,
        stop: &CancellationToken,
    ) -> Result<(), WorkerError> {
        let mut orders = Vec::with_capacity(batch.len());
        let mut decodable = Vec::with_capacity(batch.len());
        for message in batch {
            match decode(&message) {
                Ok(order) => {
                    orders.push(order);
                    decodable.push(message);
                }
                Err(reason) => {
                    // A command nobody can read would block the partition for
                    // ever if redelivered; it is terminated and logged with
                    // its reason instead of being acked as if decided.
                    warn!(subject = %message.subject, %reason, "terminating an undecodable order command");
                    metrics::counter!(metric_names::POISON_MESSAGES, "stream" => "orders")
                        .increment(1);
                    if let Err(err) = message.ack_with(AckKind::Term).await {
                        warn!(%err, "could not terminate an undecodable command");
                    }
                }
            }
        }
        if orders.is_empty() {
            return Ok(());
        }
        // Only while spans are exported: otherwise a batch makes no span per
        // order, and each order's context passes on unchanged.
        let spans = if otel::enabled() {
            crate::decision_spans::open(self.partition, &mut orders)
        } else {
            Default::default()
        };

        let started = Instant::now();
        let report = self.commit_with_retry(&orders, &decodable, stop).await?;
        let commit_time = started.elapsed();
        crate::decision_spans::close(spans, &report);

        // Acks go out only after the commit. An ack lost now means a
        // redelivery, which the decided-order check turns into a no-op.
        let acks = decodable.iter().map(|m| m.ack());
        for result in futures::future::join_all(acks).await {
            if let Err(err) = result {
                warn!(%err, "ack failed; the command will be redelivered and skipped");
            }
        }
        self.relay_wakeup.notify_one();
        self.record(&report, orders.len(), commit_time);
        Ok(())
    }

    /// Commits the batch, retrying through database outages while holding the
    /// messages (with progress acks so JetStream does not redeliver them
    /// meanwhile). Giving a batch up while continuing with later messages
    /// would reorder the partition, so the worker either commits this batch
    /// or stops.
    async fn commit_with_retry(
        &self,
        orders: &[QueuedCommand],
        messages: &[jetstream::Message],
        stop: &CancellationToken,
    ) -> Result<BatchReport, WorkerError> {
        let mut backoff = Duration::from_millis(50);
        loop {
            match decide_and_commit(&self.pool, &self.naming, self.partition, self.epoch, orders)
                .await
            {
                Ok(report) => return Ok(report),
                Err(BatchError::LeaseLost) => return Err(WorkerError::LeaseLost(self.partition)),
                Err(BatchError::Database(err)) => {
                    warn!(partition = self.partition, %err, retry_in = ?backoff, "batch commit failed");
                    if stop.is_cancelled() {
                        return Err(WorkerError::Abandoned);
                    }
                    for message in messages {
                        let _ = message.ack_with(AckKind::Progress).await;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn record(&self, report: &BatchReport, batch_size: usize, commit_time: Duration) {
        let now = chrono::Utc::now();
        let partition = self.partition.to_string();
        metrics::histogram!(metric_names::BATCH_SIZE, "partition" => partition.clone())
            .record(batch_size as f64);
        metrics::histogram!(metric_names::BATCH_COMMIT, "partition" => partition)
            .record(commit_time.as_secs_f64());
        let mut confirmed = 0u64;
        for (_, accepted_at, outcome) in &report.decided {
            let latency = (now - *accepted_at).to_std().unwrap_or_default();
            metrics::histogram!(metric_names::DECISION_LATENCY).record(latency.as_secs_f64());
            match outcome {
                Ok(()) => confirmed += 1,
                Err(reason) => metrics::counter!(
                    metric_names::ORDERS_DECIDED,
                    "outcome" => "rejected",
                    "reason" => reason.as_str()
                )
                .increment(1),
            }
        }
        metrics::counter!(metric_names::ORDERS_DECIDED, "outcome" => "confirmed", "reason" => "")
            .increment(confirmed);
        metrics::counter!(metric_names::ORDERS_SETTLED, "outcome" => "cancelled")
            .increment(report.cancelled as u64);
        metrics::counter!(metric_names::ORDERS_SETTLED, "outcome" => "fulfilled")
            .increment(report.fulfilled as u64);
        info!(
            partition = self.partition,
            batch_size,
            decided = report.decided.len(),
            confirmed,
            cancelled = report.cancelled,
            fulfilled = report.fulfilled,
            no_ops = report.no_ops,
            events = report.events,
            commit_ms = commit_time.as_secs_f64() * 1000.0,
            order_ids = ?report.decided.iter().map(|(id, _, _)| id).collect::<Vec<_>>(),
            trace_ids = %Aligned(&report.decided_traces),
            "batch committed"
        );
    }
}

fn decode(message: &jetstream::Message) -> Result<QueuedCommand, String> {
    let info = message
        .info()
        .map_err(|e| format!("no JetStream metadata: {e}"))?;
    let stream_seq = info.stream_sequence;
    match serde_json::from_slice::<OrderCommand>(&message.payload) {
        Ok(command) => Ok(QueuedCommand {
            stream_seq,
            command,
            trace: MessageTrace::from_headers(message.headers.as_ref()),
        }),
        Err(err) => Err(format!("not an order command: {err}")),
    }
}
