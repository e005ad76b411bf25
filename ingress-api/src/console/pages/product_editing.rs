//! Product editing for managers and admins: `GET`/`POST
//! /console/products/new` adds a product through the same function as
//! `POST /products`; the product page's edit form (`POST
//! /console/products/{sku}/edit`) and archive button (`POST
//! /console/products/{sku}/archive`) go through the same functions as
//! `PATCH /products/{sku}` and `POST /products/{sku}/archive`. Staff are
//! refused by those functions' own role check.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use orderflow_core::domain::Role;
use orderflow_core::limits::MAX_STOCK_OPERATION_QUANTITY;
use serde::Deserialize;

use crate::console::layout::{render, Layout, Section};
use crate::console::pages::flash::Done;
use crate::console::pages::form::FormState;
use crate::console::pages::product::{self, Forms};
use crate::console::problem;
use crate::console::session::{self, ConsoleUser};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::products::{self, NewProduct, ProductChange};
use crate::state::AppState;

/// API field names and the form fields that show their refusals.
const NEW_FIELDS: [(&str, &str); 6] = [
    ("sku", "sku"),
    ("name", "name"),
    ("price_cents", "price"),
    ("unit", "unit"),
    ("category", "category"),
    ("low_stock_threshold", "threshold"),
];

const EDIT_FIELDS: [(&str, &str); 4] = [
    ("name", "name"),
    ("price_cents", "price"),
    ("category", "category"),
    ("low_stock_threshold", "threshold"),
];

#[derive(Template)]
#[template(path = "console/product_new.html")]
struct NewProductPage {
    layout: Layout,
    form: FormState,
    csrf: String,
}

fn new_product_page(status: StatusCode, user: &ConsoleUser, form: FormState) -> Response {
    render(
        status,
        &NewProductPage {
            layout: Layout::new(Some(user), Section::NewProduct, "New product"),
            form,
            csrf: user.csrf.clone(),
        },
    )
}

/// `GET /console/products/new`: the empty form, for managers and admins.
pub async fn show_new(user: ConsoleUser) -> Response {
    if let Err(err) = user.auth.require(Role::Manager) {
        return problem::page(Some(&user), &err);
    }
    new_product_page(
        StatusCode::OK,
        &user,
        FormState::with(&[("unit", "each"), ("threshold", "0")]),
    )
}

/// A price typed as whole cents. The JSON API takes a number and so has no
/// words for text; the console says what it wants instead.
fn parse_price(text: &str, errors: &mut Vec<FieldError>) -> i64 {
    text.trim().parse().unwrap_or_else(|_| {
        errors.push(FieldError::new(
            "price_cents",
            "must be a whole number of cents, not negative",
        ));
        0
    })
}

/// A threshold typed as text; text that is no number is refused in the
/// words the API uses for a number out of range.
fn parse_threshold(text: &str, errors: &mut Vec<FieldError>) -> i64 {
    text.trim().parse().unwrap_or_else(|_| {
        errors.push(FieldError::new(
            "low_stock_threshold",
            format!("must be between 0 and {MAX_STOCK_OPERATION_QUANTITY}"),
        ));
        0
    })
}

/// Optional text: empty means absent.
fn optional(text: &str) -> Option<String> {
    (!text.trim().is_empty()).then(|| text.to_owned())
}

fn with_flash(state: &AppState, sku: &str, done: &Done) -> Response {
    let mut response = Redirect::to(&format!("/console/products/{sku}")).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(state, product::FLASH_COOKIE, &done.encode(), 60),
    );
    response
}

#[derive(Debug, Default, Deserialize)]
pub struct NewInput {
    #[serde(default)]
    pub sku: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub price: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub threshold: String,
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/products/new`: 303 to the new product's page; 422 (or
/// 409 for a taken sku) with the form again; 403 for staff or without the
/// CSRF token.
pub async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    input: Result<Form<NewInput>, FormRejection>,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let mut errors = Vec::new();
    let price_cents = parse_price(&input.price, &mut errors);
    let low_stock_threshold = parse_threshold(&input.threshold, &mut errors);
    let result = if errors.is_empty() {
        let new = NewProduct {
            sku: input.sku.trim().to_owned(),
            name: input.name.clone(),
            price_cents,
            unit: optional(&input.unit),
            category: optional(&input.category),
            low_stock_threshold,
        };
        products::add_product(&state, &user.auth, new).await
    } else {
        // The role check comes first, as it would in the API.
        user.auth
            .require(Role::Manager)
            .and(Err(ApiError::Validation(errors)))
    };
    let err = match result {
        Ok(product) => return with_flash(&state, &product.sku, &Done::Created),
        Err(err) => err,
    };
    let mut form = FormState::with(&[
        ("sku", &input.sku),
        ("name", &input.name),
        ("price", &input.price),
        ("unit", &input.unit),
        ("category", &input.category),
        ("threshold", &input.threshold),
    ]);
    if !form.take_refusal(&err, &NEW_FIELDS) {
        return problem::page(Some(&user), &err);
    }
    new_product_page(err.status(), &user, form)
}

#[derive(Debug, Default, Deserialize)]
pub struct EditInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub price: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub threshold: String,
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/products/{sku}/edit`: 303 back to the product page; 422
/// or 409 (archived) with the form again; 403 for staff or without the
/// CSRF token. An empty category clears it.
pub async fn edit(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(sku): Path<String>,
    input: Result<Form<EditInput>, FormRejection>,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let mut errors = Vec::new();
    let price_cents = parse_price(&input.price, &mut errors);
    let low_stock_threshold = parse_threshold(&input.threshold, &mut errors);
    let result: ApiResult<_> = if errors.is_empty() {
        let change = ProductChange {
            name: Some(input.name.clone()),
            price_cents: Some(price_cents),
            unit: None,
            category: Some(optional(&input.category)),
            low_stock_threshold: Some(low_stock_threshold),
        };
        products::change_product(&state, &user.auth, &sku, change).await
    } else {
        user.auth
            .require(Role::Manager)
            .and(Err(ApiError::Validation(errors)))
    };
    let err = match result {
        Ok(product) => return with_flash(&state, &product.sku, &Done::Edited),
        Err(err) => err,
    };
    let mut form = FormState::with(&[
        ("name", &input.name),
        ("price", &input.price),
        ("category", &input.category),
        ("threshold", &input.threshold),
    ]);
    if !form.take_refusal(&err, &EDIT_FIELDS) {
        return problem::page(Some(&user), &err);
    }
    let mut forms = Forms::fresh();
    forms.edit = Some(form);
    product::page_with(&state, &user, &sku, err.status(), forms).await
}

#[derive(Debug, Default, Deserialize)]
pub struct ArchiveInput {
    /// The confirmation checkbox: present only when ticked.
    #[serde(default)]
    pub confirm: Option<String>,
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/products/{sku}/archive`: archives only with the
/// confirmation box ticked (422 beside it otherwise, nothing archived), so
/// one stray click cannot take a product out of the catalogue; 303 back to
/// the product page; 403 for staff or without the CSRF token.
pub async fn archive(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(sku): Path<String>,
    input: Result<Form<ArchiveInput>, FormRejection>,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let result = if input.confirm.is_some() {
        products::archive(&state, &user.auth, &sku).await
    } else {
        user.auth
            .require(Role::Manager)
            .and(Err(ApiError::field("confirm", "tick to confirm archiving")))
    };
    let err = match result {
        Ok(product) => return with_flash(&state, &product.sku, &Done::Archived),
        Err(err) => err,
    };
    let mut form = FormState::default();
    if !form.take_refusal(&err, &[("confirm", "confirm")]) {
        return problem::page(Some(&user), &err);
    }
    let mut forms = Forms::fresh();
    forms.archive = form;
    product::page_with(&state, &user, &sku, err.status(), forms).await
}
