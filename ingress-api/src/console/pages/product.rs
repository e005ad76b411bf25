//! `GET /console/products/{sku}`: a product's stock per location, its recent
//! ledger rows and low-stock alerts, and the stock forms. The receive, ship,
//! transfer and adjust forms are answered by
//! [`stock_operations`](super::stock_operations), the edit and archive forms
//! (managers and admins) by [`product_editing`](super::product_editing).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use orderflow_core::domain::Role;

use crate::console::layout::{render, Layout, Section};
use crate::console::pages::flash::Done;
use crate::console::pages::form::FormState;
use crate::console::problem;
use crate::console::session::{self, ConsoleUser};
use crate::error::ApiResult;
use crate::http::inventory::{self, MovementQuery, MovementView};
use crate::http::locations::{self, LocationQuery};
use crate::http::products::{self, ProductDetail};
use crate::http::reports::{self, Alert, AlertQuery};
use crate::state::AppState;
use crate::stock;

/// Ledger rows the page shows, newest first.
const RECENT_MOVEMENTS: i64 = 20;

/// Low-stock alerts the page shows, newest first.
const RECENT_ALERTS: i64 = 10;

/// The most locations the receive form offers (the API's largest page).
const MAX_LOCATIONS: i64 = 200;

/// The cookie carrying what a form of the page did ([`Done`]) across the
/// redirect after it, read once by the product page.
pub const FLASH_COOKIE: &str = "orderflow_flash";

#[derive(Template)]
#[template(path = "console/product.html")]
struct ProductPage {
    layout: Layout,
    product: ProductDetail,
    movements: Vec<MovementView>,
    alerts: Vec<Alert>,
    /// Codes of the active locations.
    locations: Vec<String>,
    receive: FormState,
    ship: FormState,
    transfer: FormState,
    adjust: FormState,
    /// The reasons the adjust form offers, the API's own.
    adjust_reasons: &'static [&'static str],
    /// Whether the user may edit and archive the product (managers, admins).
    can_manage: bool,
    edit: FormState,
    archive: FormState,
    flash: Option<String>,
    /// The session's CSRF token, for every form of the page.
    csrf: String,
}

/// Every form of the page, as shown.
#[derive(Debug, Clone)]
pub struct Forms {
    pub receive: FormState,
    pub ship: FormState,
    pub transfer: FormState,
    pub adjust: FormState,
    /// The edit form; `None` shows the product's own values.
    pub edit: Option<FormState>,
    pub archive: FormState,
}

impl Forms {
    /// The forms as a fresh page shows them: the default location chosen.
    pub fn fresh() -> Self {
        let main = inventory::DEFAULT_LOCATION;
        Forms {
            receive: FormState::with(&[("location", main)]),
            ship: FormState::with(&[("location", main)]),
            transfer: FormState::with(&[("from", main)]),
            adjust: FormState::with(&[("location", main), ("reason", "cycle_count")]),
            edit: None,
            archive: FormState::default(),
        }
    }
}

/// What the product page reads.
struct ProductData {
    product: ProductDetail,
    movements: Vec<MovementView>,
    alerts: Vec<Alert>,
    locations: Vec<String>,
}

async fn load(state: &AppState, user: &ConsoleUser, sku: &str) -> ApiResult<ProductData> {
    let product = products::product_detail(state, &user.auth, sku).await?;
    let movements = inventory::movements(
        state,
        &user.auth,
        MovementQuery {
            sku: Some(product.product.sku.clone()),
            location: None,
            kind: None,
            actor: None,
            from: None,
            to: None,
            cursor: None,
            limit: Some(RECENT_MOVEMENTS),
        },
    )
    .await?
    .items;
    let alerts = reports::alerts_page(
        state,
        &user.auth,
        AlertQuery {
            state: None,
            sku: Some(product.product.sku.clone()),
            cursor: None,
            limit: Some(RECENT_ALERTS),
        },
    )
    .await?
    .items;
    let locations = locations::locations_page(
        state,
        &user.auth,
        LocationQuery {
            include_archived: Some(false),
            cursor: None,
            limit: Some(MAX_LOCATIONS),
        },
    )
    .await?
    .items
    .into_iter()
    .map(|location| location.code)
    .collect();
    Ok(ProductData {
        product,
        movements,
        alerts,
        locations,
    })
}

fn product_page(
    status: StatusCode,
    user: &ConsoleUser,
    data: ProductData,
    forms: Forms,
    flash: Option<String>,
) -> Response {
    let title = format!("{} {}", data.product.product.sku, data.product.product.name);
    let edit = forms.edit.unwrap_or_else(|| {
        let product = &data.product.product;
        FormState::with(&[
            ("name", &product.name),
            ("price", &product.price_cents.to_string()),
            ("category", product.category.as_deref().unwrap_or("")),
            ("threshold", &product.low_stock_threshold.to_string()),
        ])
    });
    // A transfer's destination defaults to another location than its
    // source, so the form as first shown is one the API accepts.
    let mut transfer = forms.transfer;
    let from = transfer.value("from").to_owned();
    if let Some(other) = data.locations.iter().find(|code| **code != from) {
        transfer.fill_blank("to", other);
    }
    render(
        status,
        &ProductPage {
            layout: Layout::new(Some(user), Section::Products, title),
            product: data.product,
            movements: data.movements,
            alerts: data.alerts,
            locations: data.locations,
            receive: forms.receive,
            ship: forms.ship,
            transfer,
            adjust: forms.adjust,
            adjust_reasons: &stock::ADJUST_REASONS,
            can_manage: user.auth.require(Role::Manager).is_ok(),
            edit,
            archive: forms.archive,
            flash,
            csrf: user.csrf.clone(),
        },
    )
}

pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(sku): Path<String>,
    headers: HeaderMap,
) -> Response {
    let data = match load(&state, &user, &sku).await {
        Ok(data) => data,
        Err(err) => return problem::page(Some(&user), &err),
    };
    let flash = session::cookie(&headers, FLASH_COOKIE)
        .and_then(Done::decode)
        .map(|done| done.message());
    let mut response = product_page(StatusCode::OK, &user, data, Forms::fresh(), flash.clone());
    if flash.is_some() {
        response.headers_mut().insert(
            header::SET_COOKIE,
            session::clear_cookie(&state, FLASH_COOKIE),
        );
    }
    response
}

/// The product page answered with `status` and `forms` as given: how a
/// refused form comes back with what was entered and why it was refused.
pub async fn page_with(
    state: &AppState,
    user: &ConsoleUser,
    sku: &str,
    status: StatusCode,
    forms: Forms,
) -> Response {
    match load(state, user, sku).await {
        Ok(data) => product_page(status, user, data, forms, None),
        Err(load_err) => problem::page(Some(user), &load_err),
    }
}
