//! `GET /console/products/{sku}`: a product's stock per location, its recent
//! ledger rows and low-stock alerts, and the stock forms;
//! `POST /console/products/{sku}/receive` receives stock through the same
//! function as `POST /inventory/receive`. The ship, transfer and adjust forms
//! are answered by [`stock_operations`](super::stock_operations), the edit
//! and archive forms (managers and admins) by
//! [`product_editing`](super::product_editing).

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use orderflow_core::domain::Role;
use serde::Deserialize;

use crate::console::layout::{render, sentence, Layout, Section};
use crate::console::pages::flash::Done;
use crate::console::pages::form::FormState;
use crate::console::problem;
use crate::console::session::{self, ConsoleUser};
use crate::error::{ApiError, ApiResult};
use crate::http::inventory::{self, MovementQuery, MovementView, ReceiveRequest};
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

/// The cookie carrying what a form of the page did ("received N at
/// LOCATION") across the redirect after it, read once by the product page.
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
    form: ReceiveForm,
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
    receive: ReceiveForm,
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
            receive: ReceiveForm {
                location: main.to_owned(),
                ..ReceiveForm::default()
            },
            ship: FormState::with(&[("location", main)]),
            transfer: FormState::with(&[("from", main)]),
            adjust: FormState::with(&[("location", main), ("reason", "cycle_count")]),
            edit: None,
            archive: FormState::default(),
        }
    }
}

/// The receive form as shown: what was entered, and the API's refusal of
/// each field.
#[derive(Debug, Clone, Default)]
struct ReceiveForm {
    quantity: String,
    location: String,
    quantity_error: Option<String>,
    location_error: Option<String>,
    /// A refusal of no field in the form (an archived product, say).
    error: Option<String>,
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
            form: forms.receive,
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
    let flash = session::cookie(&headers, FLASH_COOKIE).and_then(|value| {
        Receipt::decode(value)
            .map(|receipt| receipt.message())
            .or_else(|| Done::decode(value).map(|done| done.message()))
    });
    let mut response = product_page(StatusCode::OK, &user, data, Forms::fresh(), flash.clone());
    if flash.is_some() {
        response.headers_mut().insert(
            header::SET_COOKIE,
            session::clear_cookie(&state, FLASH_COOKIE),
        );
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct ReceiveInput {
    #[serde(default)]
    pub quantity: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/products/{sku}/receive`: 303 back to the product page,
/// which then says what was received; 422 with the form again and the
/// API's message beside each refused field; 403 without the CSRF token.
pub async fn receive(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(sku): Path<String>,
    input: Result<Form<ReceiveInput>, FormRejection>,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or(ReceiveInput {
        quantity: String::new(),
        location: String::new(),
        csrf: String::new(),
    });
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let result = match input.quantity.trim().parse::<i64>() {
        // The form sends text; text that is no number is refused in the
        // words the API uses for a number out of range.
        Err(_) => Err(ApiError::Validation(vec![stock::quantity_refusal(
            "quantity",
            inventory::MIN_RECEIVE_QUANTITY,
            inventory::MIN_RECEIVE_QUANTITY,
        )])),
        Ok(quantity) => {
            let request = ReceiveRequest {
                sku: sku.clone(),
                location: Some(input.location.clone()),
                quantity,
                reason: None,
            };
            inventory::receive_stock(&state, &user.auth, request).await
        }
    };
    let err = match result {
        Ok(level) => {
            let receipt = Receipt {
                quantity: input.quantity.trim().parse().unwrap_or_default(),
                location: level.location,
            };
            let mut response =
                Redirect::to(&format!("/console/products/{}", level.sku)).into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                session::set_cookie(&state, FLASH_COOKIE, &receipt.encode(), 60),
            );
            return response;
        }
        Err(err) => err,
    };
    let mut form = ReceiveForm {
        quantity: input.quantity,
        location: input.location,
        ..ReceiveForm::default()
    };
    match &err {
        ApiError::Validation(errors) => {
            let mut others = Vec::new();
            for error in errors {
                match error.field.as_str() {
                    "quantity" => form.quantity_error = Some(error.message.clone()),
                    "location" => form.location_error = Some(error.message.clone()),
                    _ => others.push(format!("{} {}", error.field, error.message)),
                }
            }
            if !others.is_empty() {
                form.error = Some(sentence(&others.join("; ")));
            }
        }
        ApiError::Conflict(_) => form.error = Some(sentence(&err.public_detail())),
        _ => return problem::page(Some(&user), &err),
    }
    let forms = Forms {
        receive: form,
        ..Forms::fresh()
    };
    page_with(&state, &user, &sku, err.status(), forms).await
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

/// A receipt, as the flash cookie carries it: `<quantity>:<location code>`.
/// Location codes are `[A-Za-z0-9._-]`, safe in a cookie as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Receipt {
    quantity: i64,
    location: String,
}

impl Receipt {
    fn encode(&self) -> String {
        format!("{}:{}", self.quantity, self.location)
    }

    /// The receipt in a cookie value; anything else (a tampered cookie) is
    /// ignored rather than shown.
    fn decode(value: &str) -> Option<Self> {
        let (quantity, location) = value.split_once(':')?;
        let location_ok = !location.is_empty()
            && location
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        Some(Receipt {
            quantity: quantity.parse().ok().filter(|q| *q > 0)?,
            location: location_ok.then(|| location.to_owned())?,
        })
    }

    fn message(&self) -> String {
        format!("Received {} at {}", self.quantity, self.location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_survives_its_cookie_and_a_tampered_one_is_dropped() {
        let receipt = Receipt {
            quantity: 12,
            location: "east-2".into(),
        };
        assert_eq!(Receipt::decode(&receipt.encode()), Some(receipt));
        assert_eq!(Receipt::decode("12:<script>"), None);
        assert_eq!(Receipt::decode("x:main"), None);
        assert_eq!(Receipt::decode("0:main"), None);
        assert_eq!(Receipt::decode("12"), None);
    }
}
