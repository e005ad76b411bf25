//! `/openapi.json`, generated from the handlers' annotations: each HTTP
//! module documents its own routes, merged here.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::OpenApi;

use crate::http::{
    events, health, inventory, locations, orders, products, reports, users, users_admin, webhooks,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(info(
    title = "orderflow",
    description = "Orders queued durably and decided against stock without overselling."
))]
struct Info;

/// The whole document.
pub fn document() -> Document {
    let mut document = Info::openapi();
    for part in [
        users::Api::openapi(),
        users_admin::Api::openapi(),
        products::Api::openapi(),
        locations::Api::openapi(),
        inventory::Api::openapi(),
        orders::Api::openapi(),
        reports::Api::openapi(),
        webhooks::Api::openapi(),
        events::Api::openapi(),
        health::Api::openapi(),
    ] {
        document.merge(part);
    }
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    document
}

pub fn router() -> Router<AppState> {
    let document = document();
    Router::new().route(
        "/openapi.json",
        get(move || std::future::ready(Json(document))),
    )
}
