//! Administering users: `GET /users`, `POST /users`, `PATCH /users/{id}`, and changing one's own password.

use axum::Router;

use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
}
