//! Reports over stock and orders: `GET /alerts`, `GET /dashboard`, and the reconciliation of stock against the ledger.

use axum::Router;

use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
}
