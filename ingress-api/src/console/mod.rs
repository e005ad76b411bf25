//! The web console for staff, managers and admins, under `/console`:
//! server-rendered pages and one small script for the live feed.
//!
//! Every page calls the same functions as the JSON API's handlers, with the
//! same role checks and validation messages, so the console can never allow
//! what the API refuses; it only swaps the bearer token for a session cookie
//! and JSON for HTML.
//!
//! - [`session`]: the session cookie and the signed-in user it names.
//! - [`csrf`]: the per-session token every form that changes something carries.
//! - [`layout`]: the chrome every page shares, and rendering pages as answers.
//! - [`problem`]: errors as pages.
//! - [`pages`]: one module per page.
//! - [`live`]: the live feed, the API's event stream under the session cookie.
//! - [`assets`]: the stylesheet and the script, embedded in the binary.
//! - [`headers`]: the security headers of every console answer.
//! - [`notice`]: the one-shot notice shown after an action.

pub mod assets;
pub mod csrf;
pub mod headers;
pub mod layout;
pub mod live;
pub mod notice;
pub mod pages;
pub mod problem;
pub mod session;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(pages::dashboard::show))
        .route(
            "/console/login",
            get(pages::login::show).post(pages::login::sign_in),
        )
        .route("/console/logout", post(pages::login::sign_out))
        .route("/console/products", get(pages::products::show))
        .route("/console/products/{sku}", get(pages::product::show))
        .route(
            "/console/products/{sku}/receive",
            post(pages::stock_operations::receive),
        )
        // Users management and low-stock alerts.
        .route(
            "/console/users",
            get(pages::users::show).post(pages::user_forms::create),
        )
        .route(
            "/console/users/{id}/role",
            post(pages::user_forms::change_role),
        )
        .route(
            "/console/users/{id}/active",
            post(pages::user_forms::set_active),
        )
        .route("/console/alerts", get(pages::alerts::show))
        // Orders and webhooks.
        .route("/console/orders", get(pages::orders::show))
        .route("/console/orders/{order_id}", get(pages::order::show))
        .route(
            "/console/orders/{order_id}/fulfil",
            post(pages::order::fulfil),
        )
        .route(
            "/console/orders/{order_id}/cancel",
            post(pages::order::cancel),
        )
        .route(
            "/console/webhooks",
            get(pages::webhooks::show).post(pages::webhooks::register),
        )
        .route(
            "/console/webhooks/dead-letters",
            get(pages::dead_letters::show),
        )
        .route(
            "/console/webhooks/dead-letters/{delivery_id}/replay",
            post(pages::dead_letters::replay),
        )
        .route("/console/webhooks/{id}", get(pages::webhook::show))
        .route("/console/webhooks/{id}/ping", post(pages::webhooks::ping))
        // Stock operations and product editing.
        .route(
            "/console/products/{sku}/ship",
            post(pages::stock_operations::ship),
        )
        .route(
            "/console/products/{sku}/transfer",
            post(pages::stock_operations::transfer),
        )
        .route(
            "/console/products/{sku}/adjust",
            post(pages::stock_operations::adjust),
        )
        .route(
            "/console/products/new",
            get(pages::product_editing::show_new).post(pages::product_editing::create),
        )
        .route(
            "/console/products/{sku}/edit",
            post(pages::product_editing::edit),
        )
        .route(
            "/console/products/{sku}/archive",
            post(pages::product_editing::archive),
        )
        .route("/console/events", get(live::stream))
        .route("/console/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn(headers::protect))
}
