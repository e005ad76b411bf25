//! Live updates: `GET /events/stream` as Server-Sent Events, fanned out through NATS and filtered to what the caller may see.

use axum::Router;

use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
}
