//! The notifier: consumes the EVENTS stream and tells people what happened.
//!
//! - [`consumer`]: the durable pull consumer and the loop that pulls batches;
//!   shutdown interrupts only the wait for the next message.
//! - [`handler`]: one batch, from messages to one transaction, acks and
//!   deliveries; the one place messages are acked, retried or terminated.
//! - [`inbox`]: `processed_events`, which makes every effect happen once.
//! - [`effects`]: which events have effects at all; only those use the inbox.
//! - [`alerts`]: low-stock alerts opened by `stock.low`, resolved by
//!   `stock.recovered`.
//! - [`deliveries`]: the `notification_deliveries` ledger, pending to outcome.
//! - [`channel`]: the `Channel` trait, the `Channels` registry and the `log`
//!   channel.
//! - [`email`]: low-stock and recovered alerts to managers by SMTP, a channel
//!   registered when `ORDERFLOW_SMTP_HOST` is set.
//! - [`webhooks`]: webhook deliveries, recorded in the batch transaction and
//!   sent by a dispatcher running beside the consumer, with retries, per-key
//!   order, dead letters and signatures.
//! - [`event_trace`]: each event's trace context: spans, the batch log line,
//!   the `traceparent` of webhook requests.
//! - [`http`]: `/metrics` and `/healthz`.
//! - [`redelivery`]: retries channel deliveries that failed for now or were
//!   cut short by a crash.
//! - [`retry`]: backoff while the database or broker is away.
//!
//! [`run`] wires them together; `main.rs` only reads settings and signals.

pub mod alerts;
pub mod channel;
pub mod consumer;
pub mod deliveries;
pub mod effects;
pub mod email;
pub mod event_trace;
pub mod handler;
pub mod http;
pub mod inbox;
pub mod known_series;
pub mod redelivery;
pub mod retry;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use orderflow_core::broker::{self, StreamLimits};
use orderflow_core::naming::Naming;
use orderflow_core::settings::Settings;
use orderflow_core::{db, telemetry};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::channel::Channels;
use crate::consumer::EventConsumer;
use crate::deliveries::RetryPolicy;
use crate::handler::Handler;
use crate::webhooks::dispatcher::Dispatcher;

/// Where `/metrics` and `/healthz` are served when `ORDERFLOW_METRICS_ADDR`
/// is unset; the processor's default is another port on the same host.
pub const DEFAULT_METRICS_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9092);

/// Where `/metrics` and `/healthz` are served: `ORDERFLOW_METRICS_ADDR`, else
/// [`DEFAULT_METRICS_ADDR`]. The `healthcheck` subcommand probes the same
/// address, so the two cannot disagree.
pub fn metrics_addr(settings: &Settings) -> SocketAddr {
    settings.metrics_addr.unwrap_or(DEFAULT_METRICS_ADDR)
}

/// Database connections: one batch transaction at a time plus the outcome
/// updates, with room for a second replica's worth of slack.
const POOL_SIZE: u32 = 4;

/// How long shutdown waits for the broker to confirm the last acks.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What a deployment does not choose through settings: the channels and, for
/// tests that restart the notifier, a shorter ack wait.
#[derive(Debug, Clone)]
pub struct Options {
    /// The channels to deliver through; `None` for [`Channels::standard`]
    /// plus email when `ORDERFLOW_SMTP_HOST` is set.
    pub channels: Option<Channels>,
    /// The consumer's ack wait, applied when this run creates the consumer.
    pub ack_wait: Duration,
    /// How failed channel deliveries are retried; tests shorten it.
    pub retries: RetryPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            channels: None,
            ack_wait: consumer::DEFAULT_ACK_WAIT,
            retries: RetryPolicy::default(),
        }
    }
}

/// Runs the notifier with the standard channels until `shutdown` fires.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with(settings, Options::default(), shutdown).await
}

/// Runs the notifier until `shutdown` fires, with the webhook settings from
/// the environment ([`webhooks::Config::from_env`]); see [`run_with_webhooks`].
pub async fn run_with(
    settings: Settings,
    options: Options,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let webhooks = webhooks::Config::from_env().context("webhook settings")?;
    run_with_webhooks(settings, options, webhooks, shutdown).await
}

/// Runs the notifier until `shutdown` fires: serves metrics at once, waits for
/// the database and the broker, then consumes events while the webhook
/// dispatcher sends deliveries. Returns after the batch and the webhook
/// requests in flight finished and the NATS client drained.
///
/// The webhook settings are a parameter of their own rather than a field of
/// [`Options`], so code that builds `Options` field by field keeps compiling;
/// tests pass short backoffs and timeouts here.
///
/// Everything runs inside this one future rather than in spawned tasks, so
/// aborting it (as a crash test does) stops all of it, and there is no task
/// left to track on the way out.
pub async fn run_with_webhooks(
    settings: Settings,
    options: Options,
    webhooks: webhooks::Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Installed before anything counts, so no early metric goes nowhere.
    let metrics = telemetry::prometheus();
    let naming = Naming::new(&settings.namespace)?;
    // Read before waiting for anything, so a bad setting fails at start.
    let email = match options.channels {
        Some(_) => None,
        None => email::Config::from_env().context("read the ORDERFLOW_SMTP_* settings")?,
    };
    let listener = http::bind(metrics_addr(&settings)).await?;
    tracing::info!(
        addr = %listener.local_addr().context("read the metrics address")?,
        namespace = naming.namespace(),
        "notifier serving /metrics and /healthz"
    );

    // The HTTP server outlives the consumer by nothing: when consuming ends,
    // for whatever reason, the server is told to stop too.
    let http_shutdown = shutdown.child_token();
    let server = http::serve(listener, metrics, http_shutdown.clone());
    let work = async {
        let result = consume(&settings, naming, options, webhooks, email, &shutdown).await;
        http_shutdown.cancel();
        result
    };
    let (served, worked) = tokio::join!(server, work);
    served.context("metrics server")?;
    worked?;
    tracing::info!("notifier stopped");
    Ok(())
}

async fn consume(
    settings: &Settings,
    naming: Naming,
    options: Options,
    webhooks: webhooks::Config,
    email: Option<email::Config>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let pool = db::lazy_pool(&settings.database_url, POOL_SIZE)?;
    // The attempts own clones rather than borrowing: a closure handing out
    // borrowing futures makes this future's `Send` bound unprovable.
    let migrated = retry::until_ok("apply migrations", shutdown, || {
        let pool = pool.clone();
        async move { db::migrate(&pool).await }
    })
    .await;
    if migrated.is_none() {
        return Ok(());
    }

    let client = broker::connect(&settings.nats_url, "notifier").await?;
    let js = async_nats::jetstream::new(client.clone());
    let limits = StreamLimits::from(settings);
    let events = EventConsumer::new(js.clone(), naming.clone(), options.ack_wait);
    let provisioned = retry::until_ok(
        "provision streams and the notifier consumer",
        shutdown,
        || {
            let (js, naming, limits, events) =
                (js.clone(), naming.clone(), limits.clone(), events.clone());
            async move {
                broker::provision(&js, &naming, &limits).await?;
                events.provision().await?;
                Ok(())
            }
        },
    )
    .await;

    if provisioned.is_some() {
        let channels = match options.channels {
            Some(channels) => channels,
            None => {
                let mut channels = Channels::standard(&naming);
                if let Some(config) = &email {
                    channels = channels.with(
                        email::EmailChannel::new(config, pool.clone())
                            .context("set up the email channel")?,
                    );
                }
                channels
            }
        };
        tracing::info!(
            ?channels,
            consumer = naming.notifier_consumer(),
            "notifier consuming events"
        );
        known_series::export(&channels);
        let wake = Arc::new(Notify::new());
        let handler = Handler::new(pool.clone(), channels.clone())
            .with_webhook_wake(wake.clone())
            .with_retries(options.retries.clone());
        let dispatcher = Dispatcher::new(pool.clone(), webhooks, wake)?;
        // Side by side in this future: a slow endpoint or a failing mail
        // server never holds up the consumer, and all stop on one shutdown.
        tokio::join!(
            events.run(&handler, shutdown),
            dispatcher.run(shutdown),
            redelivery::run(pool.clone(), channels, options.retries, shutdown),
        );
    }

    // Acks are fire-and-forget publishes: flush them before letting go, so the
    // last batch is not redelivered to the next instance.
    match tokio::time::timeout(FLUSH_TIMEOUT, client.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "could not flush the last acks"),
        Err(_) => tracing::warn!("the broker did not confirm the last acks in time"),
    }
    if let Err(err) = client.drain().await {
        tracing::warn!(error = %err, "could not drain the NATS client");
    }
    pool.close().await;
    Ok(())
}
