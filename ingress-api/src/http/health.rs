//! `/healthz`, `/readyz`, `/metrics`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz))]
pub struct Api;

pub fn router() -> Router<AppState> {
    let handle = orderflow_core::telemetry::prometheus();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(move || std::future::ready(handle.render())))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `connected` or `disconnected`: orders can be taken only when connected.
    pub broker: &'static str,
    /// `starting` until migrations are applied and the configured admin
    /// exists, then `up` or `down`. Orders are taken in every state; they
    /// wait in the queue until the database is there.
    pub database: &'static str,
}

/// Readiness to take orders: ready while the broker is connected. The
/// database's state is reported in the body but does not make the service
/// unready, because queued orders simply wait for it.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let broker_up = state.nats.connection_state() == async_nats::connection::State::Connected;
    let prepared = state.database_prepared.load(Ordering::Acquire);
    let database_up = prepared
        && tokio::time::timeout(
            Duration::from_secs(1),
            sqlx::query("select 1").execute(&state.pool),
        )
        .await
        .is_ok_and(|r| r.is_ok());
    let status = if broker_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            broker: if broker_up {
                "connected"
            } else {
                "disconnected"
            },
            database: match (prepared, database_up) {
                (false, _) => "starting",
                (true, true) => "up",
                (true, false) => "down",
            },
        }),
    )
}
