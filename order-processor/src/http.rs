//! `/metrics` and `/healthz` for Prometheus and the orchestrator.

use axum::routing::get;
use axum::Router;
use orderflow_core::telemetry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub fn router() -> Router {
    let handle = telemetry::prometheus();
    Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .route("/healthz", get(|| async { "ok" }))
}

pub async fn serve(listener: TcpListener, shutdown: CancellationToken) {
    let _ = axum::serve(listener, router())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
}
