//! The HTTP API: one router per resource, merged here, with the layers every
//! route shares.

pub mod cursor;
pub mod dead_letters;
pub mod events;
pub mod health;
pub mod inventory;
pub mod locations;
pub mod openapi;
pub mod orders;
pub mod products;
pub mod rate_limit;
pub mod reports;
pub mod request_metrics;
pub mod request_trace;
pub mod users;
pub mod users_admin;
pub mod webhooks;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::Router;
use orderflow_core::limits::MAX_BODY_BYTES;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// Longest a request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(users::router())
        .merge(users_admin::router())
        .merge(products::router())
        .merge(locations::router())
        .merge(inventory::router())
        .merge(orders::router())
        .merge(reports::router())
        .merge(webhooks::router())
        .merge(dead_letters::router())
        .merge(events::router())
        .merge(health::router())
        .merge(openapi::router())
        .merge(crate::console::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Inside the metrics and the log line, so refusals are counted and
        // logged like any answer.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::limit,
        ))
        .layer(axum::middleware::from_fn(request_metrics::record))
        // Outside the log line, which reads the trace it starts.
        .layer(axum::middleware::from_fn(request_trace::start))
        // Outside the log line, so it sees the id: a client's x-request-id is
        // kept, otherwise one is made up, and either is returned.
        .layer(PropagateRequestIdLayer::new(HeaderName::from_static(
            request_metrics::REQUEST_ID,
        )))
        .layer(SetRequestIdLayer::new(
            HeaderName::from_static(request_metrics::REQUEST_ID),
            MakeRequestUuid,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}
