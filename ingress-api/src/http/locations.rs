//! Locations: `POST /locations`, `GET /locations`, renaming and archiving.

use axum::Router;

use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
}
