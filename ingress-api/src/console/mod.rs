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

pub mod assets;
pub mod csrf;
pub mod headers;
pub mod layout;
pub mod live;
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
            post(pages::product::receive),
        )
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
        .route("/console/users", get(pages::users::show))
        .route("/console/events", get(live::stream))
        .route("/console/assets/{name}", get(assets::serve))
        .layer(axum::middleware::from_fn(headers::protect))
}
