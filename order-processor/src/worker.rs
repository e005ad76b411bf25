//! The worker of one partition: pull a batch, decide it in one transaction,
//! ack it, repeat.
//!
//! A command that can never be decided goes to the dead-letter stream instead
//! of blocking its partition: at once when it cannot be decoded, and after
//! [`dead_letter::MAX_ATTEMPTS`] failed commits when the database refuses it
//! for its data (see [`crate::batch::is_transient`]). The batch it sat in is
//! then committed in halves, in queue order, down to the one command at
//! fault, so the good commands before and after it are decided as usual.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, context::Publish, AckKind};
use futures::StreamExt;
use orderflow_core::broker;
use orderflow_core::command::OrderCommand;
use orderflow_core::dead_letter::{self, DeadLetter, ReasonKind};
use orderflow_core::metric_names;
use orderflow_core::naming::Naming;
use orderflow_core::otel;
use orderflow_core::trace_context::{Aligned, MessageTrace};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::batch::{decide_and_commit, is_transient, BatchError, BatchReport, QueuedCommand};

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
    /// Publishes dead letters.
    pub js: jetstream::Context,
    pub batch_max: usize,
    /// How long a batch that is not full waits for more orders.
    pub batch_linger: Duration,
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
            self.take_ready(&mut batch, &mut messages)?;
            if batch.len() > 1 {
                self.linger(&mut batch, &mut messages).await?;
            }
            self.handle(batch, &stop).await?;
        }
    }

    /// Adds what has already arrived, up to a full batch.
    fn take_ready(
        &self,
        batch: &mut Vec<jetstream::Message>,
        messages: &mut pull::Stream,
    ) -> Result<(), WorkerError> {
        while batch.len() < self.batch_max {
            match broker::ready_now(messages) {
                Some(next) => batch.push(self.received(next)?),
                None => break,
            }
        }
        Ok(())
    }

    /// Waits up to `batch_linger` for more of a batch that is not full.
    ///
    /// Every batch pays a fixed price (a transaction of a dozen statements, a
    /// commit, a relay round and one `stock.changed` event per product it
    /// touched), and with many partitions sharing the load each worker's
    /// batches stay small: with 8 partitions and zipf demand they averaged
    /// about a dozen orders, most of them for different products. A few
    /// milliseconds' wait makes them several times larger. Only a worker
    /// that found more than one order waiting lingers, so a lone order under
    /// light load is decided at once. Shutdown does not cut the wait short,
    /// as it never cuts a batch in hand short; the wait is bounded.
    async fn linger(
        &self,
        batch: &mut Vec<jetstream::Message>,
        messages: &mut pull::Stream,
    ) -> Result<(), WorkerError> {
        if self.batch_linger.is_zero() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + self.batch_linger;
        while batch.len() < self.batch_max {
            match tokio::time::timeout_at(deadline, messages.next()).await {
                Ok(next) => {
                    batch.push(self.received(next)?);
                    self.take_ready(batch, messages)?;
                }
                Err(_) => break,
            }
        }
        Ok(())
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
                    // ever if redelivered, and no retry can help it.
                    warn!(subject = %message.subject, %reason, "dead-lettering an undecodable order command");
                    metrics::counter!(metric_names::POISON_MESSAGES, "stream" => "orders")
                        .increment(1);
                    self.dead_letter(&message, 0, ReasonKind::Undecodable, reason, stop)
                        .await?;
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
        let report = self.commit_in_order(&orders, &decodable, stop).await?;
        let commit_time = started.elapsed();
        crate::decision_spans::close(spans, &report);
        self.relay_wakeup.notify_one();
        self.record(&report, orders.len(), commit_time);
        Ok(())
    }

    /// Commits the batch and acks what each commit decided. When the whole
    /// batch fails on its data, it is split in two and each half committed in
    /// turn, left first, down to single commands: the commands before the one
    /// at fault commit in queue order, the one at fault is tried alone up to
    /// [`dead_letter::MAX_ATTEMPTS`] times and then dead-lettered, and only
    /// then do the commands after it go. A batch with one bad command among
    /// `n` costs about 2 log2(n) commits and its own attempts, instead of
    /// blocking the partition.
    async fn commit_in_order(
        &self,
        orders: &[QueuedCommand],
        messages: &[jetstream::Message],
        stop: &CancellationToken,
    ) -> Result<BatchReport, WorkerError> {
        let mut report = BatchReport::default();
        // Ranges still to commit, the next one last.
        let mut todo: Vec<Range<usize>> = std::iter::once(0..orders.len()).collect();
        while let Some(range) = todo.pop() {
            // Everything from here on is still unacked: keep all of it held.
            let held = &messages[range.start..];
            let error = match self
                .commit_holding(&orders[range.clone()], held, stop)
                .await?
            {
                Ok(part) => {
                    report.absorb(part);
                    ack(&messages[range]).await;
                    continue;
                }
                Err(error) => error,
            };
            if range.len() > 1 {
                warn!(
                    partition = self.partition,
                    err = %error,
                    commands = range.len(),
                    "batch commit refused for its data; isolating the command at fault"
                );
                let middle = range.start + range.len() / 2;
                todo.push(middle..range.end);
                todo.push(range.start..middle);
                continue;
            }
            let index = range.start;
            match self.retry_alone(&orders[index], held, error, stop).await? {
                Ok(part) => {
                    report.absorb(part);
                    ack(&messages[range]).await;
                }
                Err(error) => {
                    warn!(
                        partition = self.partition,
                        stream_seq = orders[index].stream_seq,
                        order_id = %orders[index].command.order_id(),
                        err = %error,
                        attempts = dead_letter::MAX_ATTEMPTS,
                        "dead-lettering an order command the database refuses"
                    );
                    self.dead_letter(
                        &messages[index],
                        dead_letter::MAX_ATTEMPTS,
                        ReasonKind::Database,
                        error.to_string(),
                        stop,
                    )
                    .await?;
                }
            }
        }
        Ok(report)
    }

    /// Tries a command that already failed once on its data again, alone,
    /// until it commits or has failed [`dead_letter::MAX_ATTEMPTS`] times;
    /// the last error when it never committed. Transient failures between
    /// the attempts are waited out and do not count.
    async fn retry_alone(
        &self,
        order: &QueuedCommand,
        held: &[jetstream::Message],
        mut error: sqlx::Error,
        stop: &CancellationToken,
    ) -> Result<Result<BatchReport, sqlx::Error>, WorkerError> {
        let mut backoff = Duration::from_millis(20);
        for attempt in 2..=dead_letter::MAX_ATTEMPTS {
            warn!(
                partition = self.partition,
                stream_seq = order.stream_seq,
                err = %error,
                attempt,
                "order command refused for its data; trying it again alone"
            );
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            match self
                .commit_holding(std::slice::from_ref(order), held, stop)
                .await?
            {
                Ok(report) => return Ok(Ok(report)),
                Err(next) => error = next,
            }
        }
        Ok(Err(error))
    }

    /// Commits `orders`, retrying through transient database failures while
    /// holding the messages (with progress acks so JetStream does not
    /// redeliver them meanwhile). Giving a batch up while continuing with
    /// later messages would reorder the partition, so the worker either
    /// commits this batch, stops, or (inner `Err`) answers an error that
    /// retrying will not cure.
    async fn commit_holding(
        &self,
        orders: &[QueuedCommand],
        held: &[jetstream::Message],
        stop: &CancellationToken,
    ) -> Result<Result<BatchReport, sqlx::Error>, WorkerError> {
        let mut backoff = Duration::from_millis(50);
        loop {
            match decide_and_commit(&self.pool, &self.naming, self.partition, self.epoch, orders)
                .await
            {
                Ok(report) => return Ok(Ok(report)),
                Err(BatchError::LeaseLost) => return Err(WorkerError::LeaseLost(self.partition)),
                Err(BatchError::Database(err)) if !is_transient(&err) => return Ok(Err(err)),
                Err(BatchError::Database(err)) => {
                    warn!(partition = self.partition, %err, retry_in = ?backoff, "batch commit failed");
                    if stop.is_cancelled() {
                        return Err(WorkerError::Abandoned);
                    }
                    for message in held {
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

    /// Publishes `message` to the dead-letter stream, waits for the broker to
    /// store it, and only then terminates the original. The dead letter's id
    /// is the original's stream sequence, so if the worker dies in between
    /// and meets the command again, the second copy is dropped as a
    /// duplicate. A broker that does not answer is retried until it does or
    /// the worker stops, leaving the command queued.
    async fn dead_letter(
        &self,
        message: &jetstream::Message,
        attempts: u32,
        reason_kind: ReasonKind,
        reason: String,
        stop: &CancellationToken,
    ) -> Result<(), WorkerError> {
        let stream_seq = message.info().map(|i| i.stream_sequence).unwrap_or(0);
        let letter = DeadLetter {
            subject: message.subject.to_string(),
            stream_seq,
            attempts,
            reason_kind,
            reason,
            dead_lettered_at: chrono::Utc::now(),
        };
        let mut backoff = Duration::from_millis(50);
        loop {
            let published = self
                .js
                .send_publish(
                    self.naming.dead_order_subject(self.partition),
                    // The headers first: `headers` replaces every header,
                    // the message id included.
                    Publish::build()
                        .headers(letter.to_headers())
                        .message_id(DeadLetter::message_id(
                            &self.naming.orders_stream(),
                            stream_seq,
                        ))
                        .payload(message.payload.clone()),
                )
                .await;
            let stored = match published {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(err) => Err(err.to_string()),
            };
            match stored {
                Ok(()) => break,
                Err(err) => {
                    warn!(partition = self.partition, stream_seq, %err, retry_in = ?backoff, "dead letter not stored");
                    if stop.is_cancelled() {
                        return Err(WorkerError::Abandoned);
                    }
                    let _ = message.ack_with(AckKind::Progress).await;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        metrics::counter!(metric_names::DEAD_LETTERS, "reason" => reason_kind.as_str())
            .increment(1);
        if let Err(err) = message.ack_with(AckKind::Term).await {
            // Redelivered, it is dead-lettered again under the same id and
            // dropped by the dead-letter stream as a duplicate.
            warn!(%err, stream_seq, "could not terminate a dead-lettered command");
        }
        Ok(())
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

/// Acks messages whose commands are committed. An ack lost now means a
/// redelivery, which the decided-order check turns into a no-op.
async fn ack(messages: &[jetstream::Message]) {
    let acks = messages.iter().map(|m| m.ack());
    for result in futures::future::join_all(acks).await {
        if let Err(err) = result {
            warn!(%err, "ack failed; the command will be redelivered and skipped");
        }
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
