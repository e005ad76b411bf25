//! order-processor: decides queued orders against stock, partition by
//! partition, in batches.
//!
//! - [`coordinator`]: claims partitions (at most one live worker per partition
//!   across replicas) and runs a worker for each.
//! - [`lease`]: the advisory locks and epochs behind that guarantee, and the
//!   count of live replicas.
//! - [`share`]: the fair share of partitions each replica owns.
//! - [`consumer`]: each partition's durable JetStream pull consumer.
//! - [`worker`]: pull a batch, decide and commit it, ack it.
//! - [`batch`]: the one transaction per batch: fence, lock, decide, write.
//! - [`decision`]: the pure rules: queue order, all-or-nothing, allocation.
//! - [`decision_spans`]: each command's exported span, while OTLP export is on.
//! - [`outbox`]: publishes committed events to JetStream.
//! - [`reconciler`]: the ledger drift metric.
//! - [`gauge_owner`]: which replica exports the replica-wide gauges.
//! - [`queue_depth`]: queue depth and oldest pending age per partition.
//! - [`stock_gauges`]: low-stock count and units available per location.
//! - [`known_series`]: counters exported at zero from the start.
//! - [`http`]: `/metrics` and `/healthz`.

pub mod batch;
pub mod consumer;
pub mod coordinator;
pub mod decision;
pub mod decision_spans;
pub mod gauge_owner;
pub mod http;
pub mod known_series;
pub mod lease;
pub mod outbox;
pub mod queue_depth;
pub mod reconciler;
pub mod share;
pub mod stock_gauges;
pub mod worker;

use std::collections::BTreeSet;
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
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::coordinator::{Coordinator, OwnedPartitions};

/// Where the processor serves metrics when `ORDERFLOW_METRICS_ADDR` is unset.
pub const DEFAULT_METRICS_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9091);

/// Where `/metrics` and `/healthz` are served: `ORDERFLOW_METRICS_ADDR`, else
/// [`DEFAULT_METRICS_ADDR`]. The `healthcheck` subcommand probes the same
/// address, so the two cannot disagree.
pub fn metrics_addr(settings: &Settings) -> SocketAddr {
    settings.metrics_addr.unwrap_or(DEFAULT_METRICS_ADDR)
}

/// A started processor.
pub struct Processor {
    /// Where `/metrics` and `/healthz` are served (the real port when 0 was asked for).
    pub metrics_addr: SocketAddr,
    /// The partitions this replica owns right now.
    pub owned: OwnedPartitions,
    /// This replica's name in `partition_leases.holder` and, prefixed with
    /// `orderflow-lease `, the `application_name` of its lease connection.
    pub holder: String,
    tasks: TaskTracker,
    client: async_nats::Client,
    pool: sqlx::PgPool,
}

impl Processor {
    /// Connects, migrates, provisions the streams and starts claiming
    /// partitions. Waits for the database and the broker to be reachable, or
    /// for `shutdown`.
    pub async fn start(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let listener = orderflow_core::listener::bind(metrics_addr(&settings))
            .context("bind the metrics address")?;
        let metrics_addr = listener.local_addr()?;
        known_series::export();
        let tasks = TaskTracker::new();
        tasks.spawn(http::serve(listener, shutdown.clone()));

        let naming = Naming::new(&settings.namespace)?;
        let pool_size = u32::from(settings.partitions.min(32)) + 4;
        let pool = db::lazy_pool(&settings.database_url, pool_size)?;
        retry_until("apply migrations", &shutdown, || db::migrate(&pool)).await?;

        let client = broker::connect(&settings.nats_url, "order-processor").await?;
        let js = async_nats::jetstream::new(client.clone());
        let limits = StreamLimits::from(&settings);
        let (orders, _events) = retry_until("provision streams", &shutdown, || {
            broker::provision(&js, &naming, &limits)
        })
        .await?;

        let relay_wakeup = Arc::new(Notify::new());
        let owned: OwnedPartitions = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
        let holder = holder_name();
        let coordinator = Coordinator {
            database_url: settings.database_url.clone(),
            pool: pool.clone(),
            naming: naming.clone(),
            orders: orders.clone(),
            js: js.clone(),
            partitions: settings.partitions,
            batch_max: settings.batch_max,
            batch_linger: settings.batch_linger,
            holder: holder.clone(),
            relay_wakeup: relay_wakeup.clone(),
            owned: owned.clone(),
        };
        // The relay stops only once every worker has finished its batch in
        // hand: stopped with the workers, its last flush could run before
        // their last commits, leaving those events in the outbox until the
        // next start.
        let relay_stop = CancellationToken::new();
        let workers_done = relay_stop.clone();
        let coordinator_shutdown = shutdown.clone();
        tasks.spawn(async move {
            // Cancels on return and on a panic alike.
            let _workers_done = workers_done.drop_guard();
            coordinator.run(coordinator_shutdown).await;
        });
        tasks.spawn(outbox::run(pool.clone(), js, relay_wakeup, relay_stop));
        tasks.spawn(queue_depth::run(
            orders.clone(),
            naming.clone(),
            settings.partitions,
            owned.clone(),
            queue_depth::INTERVAL,
            shutdown.clone(),
        ));
        tasks.spawn(stock_gauges::run(
            pool.clone(),
            owned.clone(),
            stock_gauges::INTERVAL,
            shutdown.clone(),
        ));
        tasks.spawn(reconciler::run(
            pool.clone(),
            owned.clone(),
            settings.reconcile_interval,
            shutdown.clone(),
        ));
        tasks.close();
        info!(%metrics_addr, partitions = settings.partitions, "order-processor started");
        Ok(Self {
            metrics_addr,
            owned,
            holder,
            tasks,
            client,
            pool,
        })
    }

    /// The partitions owned right now.
    pub fn owned_partitions(&self) -> BTreeSet<u16> {
        self.owned.lock().expect("owned partitions lock").clone()
    }

    /// Waits for the tasks to finish after shutdown, then flushes the NATS
    /// client and closes the pool.
    pub async fn wait(self) {
        self.tasks.wait().await;
        let _ = self.client.drain().await;
        self.pool.close().await;
    }
}

/// Runs the processor until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _ = telemetry::prometheus();
    Processor::start(settings, shutdown).await?.wait().await;
    Ok(())
}

/// Retries `attempt` with backoff until it succeeds or `shutdown` fires.
async fn retry_until<T, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut attempt: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) => {
                warn!(err = format!("{err:#}"), retry_in = ?backoff, "{what} failed");
                tokio::select! {
                    _ = shutdown.cancelled() => anyhow::bail!("shut down before: {what}"),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn holder_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "processor".into());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}
