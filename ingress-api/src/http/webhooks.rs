//! Webhooks: managers register endpoints, list, update and delete them, send a test ping, and read deliveries and dead letters; admins replay dead letters.

use axum::Router;

use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
}
