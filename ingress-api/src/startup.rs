//! Building and serving the application.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use orderflow_core::broker::{self, StreamLimits};
use orderflow_core::listener;
use orderflow_core::naming::Naming;
use orderflow_core::settings::Settings;
use orderflow_core::{db, telemetry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::auth::revocation::Revocations;
use crate::auth::token::TokenKeys;
use crate::http;
use crate::http::rate_limit::RateLimiter;
use crate::pending::PendingRecorder;
use crate::queue::OrderQueue;
use crate::server;
use crate::state::{AppState, Shared};

/// A built, bound, not yet serving ingress-api.
pub struct Application {
    listener: TcpListener,
    /// Most connections served at once (`ORDERFLOW_MAX_CONNECTIONS`).
    max_connections: usize,
    state: AppState,
    shutdown: CancellationToken,
    pending_task: tokio::task::JoinHandle<()>,
    migrations: tokio::task::JoinHandle<()>,
    /// Keeps `state.revocations` current from the database until shutdown.
    revocations_task: tokio::task::JoinHandle<()>,
}

impl Application {
    /// Binds the HTTP address, connects to NATS and provisions the streams.
    /// The database may be down: migrations and the admin account are applied
    /// in the background as soon as it is up, and orders are taken meanwhile.
    pub async fn build(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let _ = telemetry::prometheus();
        export_known_series();
        let listener = listener::bind(settings.http_addr)
            .with_context(|| format!("bind {}", settings.http_addr))?;
        let naming = Naming::new(&settings.namespace)?;
        let pool = db::lazy_pool(&settings.database_url, 32)?;
        let database_prepared = Arc::new(AtomicBool::new(false));
        let migrations = tokio::spawn(prepare_database(
            pool.clone(),
            settings.admin.clone(),
            database_prepared.clone(),
            shutdown.clone(),
        ));

        let client = broker::connect(&settings.nats_url, "ingress-api").await?;
        let mut js = async_nats::jetstream::new(client.clone());
        js.set_timeout(settings.publish_timeout);
        let limits = StreamLimits::from(&settings);
        let (orders, events) = provision_with_retry(&js, &naming, &limits, &shutdown).await?;
        let dead_orders = js
            .get_stream(naming.dead_orders_stream())
            .await
            .map_err(|e| anyhow::anyhow!("open stream {}: {e}", naming.dead_orders_stream()))?;
        let queue = OrderQueue::new(
            client.clone(),
            js,
            orders,
            naming.clone(),
            settings.partitions,
            settings.publish_timeout,
        );
        let (pending, pending_task) = PendingRecorder::start(pool.clone(), shutdown.clone());
        // Loaded in the background like the migrations: the replica takes
        // orders before the database answers, and keeps the last known
        // revocations while it does not.
        let revocations = Revocations::default();
        let revocations_task = revocations.spawn_refresher(pool.clone(), shutdown.clone());
        let state = Arc::new(Shared {
            pool,
            queue: Arc::new(queue),
            pending,
            tokens: TokenKeys::new(settings.jwt_secret.as_bytes(), settings.jwt_ttl),
            revocations,
            rate_limiter: RateLimiter::new(settings.rate_limit_per_client),
            naming,
            partitions: settings.partitions,
            nats: client,
            events,
            dead_orders,
            database_prepared,
            secure_cookies: settings.production,
        });
        Ok(Self {
            listener,
            max_connections: settings.max_connections,
            state,
            shutdown,
            pending_task,
            migrations,
            revocations_task,
        })
    }

    /// The bound address (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener")
    }

    /// Serves until shutdown, finishing requests in flight, then flushes
    /// pending records and the NATS client.
    pub async fn serve(self) -> anyhow::Result<()> {
        info!(addr = %self.local_addr(), "ingress-api listening");
        let router = http::router(self.state.clone());
        server::serve(
            self.listener,
            router,
            self.max_connections,
            self.shutdown.clone(),
        )
        .await;
        self.migrations.abort();
        // Nothing to flush: a refresh in flight is only a read.
        self.revocations_task.abort();
        let _ = self.pending_task.await;
        let _ = self.state.nats.drain().await;
        self.state.pool.close().await;
        Ok(())
    }
}

async fn provision_with_retry(
    js: &async_nats::jetstream::Context,
    naming: &Naming,
    limits: &StreamLimits,
    shutdown: &CancellationToken,
) -> anyhow::Result<(
    async_nats::jetstream::stream::Stream,
    async_nats::jetstream::stream::Stream,
)> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match broker::provision(js, naming, limits).await {
            Ok(streams) => return Ok(streams),
            Err(err) => {
                warn!(err = format!("{err:#}"), retry_in = ?backoff, "cannot provision streams yet");
                tokio::select! {
                    _ = shutdown.cancelled() => anyhow::bail!("shut down before the streams were provisioned"),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Applies migrations and ensures the admin account, retrying until the
/// database is reachable; then sets `prepared`, which `/readyz` reports.
async fn prepare_database(
    pool: sqlx::PgPool,
    admin: Option<(String, String)>,
    prepared: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let attempt = async {
            db::migrate(&pool).await?;
            if let Some((email, password)) = &admin {
                crate::http::users::ensure_admin(&pool, email, password).await?;
            }
            anyhow::Ok(())
        };
        match attempt.await {
            Ok(()) => {
                prepared.store(true, Ordering::Release);
                return;
            }
            Err(err) => warn!(err = format!("{err:#}"), retry_in = ?backoff, "database not ready"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Builds and serves until `shutdown`.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    Application::build(settings, shutdown).await?.serve().await
}

/// Exports the order counters at zero from the start: a series that appears
/// only on its first increment loses that increment to `rate()`.
fn export_known_series() {
    use orderflow_core::metric_names;
    metrics::counter!(metric_names::ORDERS_ACCEPTED).increment(0);
    metrics::counter!(metric_names::ORDERS_UNAVAILABLE).increment(0);
    metrics::gauge!(metric_names::LIVE_CONNECTIONS).increment(0.0);
    metrics::gauge!(metric_names::HTTP_OPEN_CONNECTIONS).increment(0.0);
    metrics::counter!(metric_names::HTTP_RATE_LIMITED, "client" => "user").increment(0);
    metrics::counter!(metric_names::HTTP_RATE_LIMITED, "client" => "address").increment(0);
    metrics::counter!(metric_names::LOGIN_THROTTLED).increment(0);
}
