//! The notifier's small HTTP face: `/metrics` for Prometheus and `/healthz`
//! for liveness probes. It has no public API, so nothing else lives here.

use std::net::SocketAddr;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why the HTTP server could not run.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bind {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serve HTTP")]
    Serve(#[source] std::io::Error),
}

/// The routes, separate from [`serve`] so tests can drive them without a socket.
pub fn router(metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .with_state(metrics)
}

/// Binds `addr`; port 0 picks a free port, read back with `local_addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    orderflow_core::listener::bind(addr).map_err(|source| HttpError::Bind { addr, source })
}

/// Serves until `shutdown` fires, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> Result<(), HttpError> {
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(HttpError::Serve)
}

async fn render_metrics(
    axum::extract::State(metrics): axum::extract::State<PrometheusHandle>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}

/// Liveness only: the process answers. The notifier takes no requests, so
/// there is no readiness to report; a database or broker outage shows in the
/// logs and in the metrics (deliveries stop) instead of restarting the pod.
async fn healthz() -> &'static str {
    "ok"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metrics_are_served_as_prometheus_text_and_healthz_answers_ok() {
        let handle = orderflow_core::telemetry::prometheus();
        metrics::counter!(orderflow_core::metric_names::NOTIFIER_DUPLICATES).increment(0);
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, handle, shutdown.clone()));

        let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(metrics.status(), reqwest::StatusCode::OK);
        assert!(metrics.headers()[header::CONTENT_TYPE.as_str()]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
        assert_eq!(health.status(), reqwest::StatusCode::OK);
        assert_eq!(health.text().await.unwrap(), "ok");

        shutdown.cancel();
        server.await.unwrap().unwrap();
    }
}
