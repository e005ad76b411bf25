//! The product page's receive, ship, transfer and adjust forms:
//! `POST /console/products/{sku}/receive`, `/ship`, `/transfer` and
//! `/adjust`, each through the same function as its JSON twin
//! (`POST /inventory/receive`, `/inventory/ship`, `/inventory/transfer`,
//! `/inventory/adjust`), so roles, checks and messages are the API's own.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use crate::console::pages::flash::Done;
use crate::console::pages::form::FormState;
use crate::console::pages::product::{self, Forms};
use crate::console::problem;
use crate::console::session::{self, ConsoleUser};
use crate::error::{ApiError, ApiResult};
use crate::http::inventory::{self, AdjustRequest, ReceiveRequest, ShipRequest, TransferRequest};
use crate::state::AppState;
use crate::stock;

/// Text from a quantity field as a number; text that is no number is
/// refused in the words the API uses for a number out of range.
fn parse_quantity(text: &str, api_field: &str, min: i64) -> ApiResult<i64> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| ApiError::Validation(vec![stock::quantity_refusal(api_field, min, min)]))
}

/// 303 back to the product page with `done` as its flash.
fn done_redirect(state: &AppState, sku: &str, done: &Done) -> Response {
    let mut response = Redirect::to(&format!("/console/products/{sku}")).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(state, product::FLASH_COOKIE, &done.encode(), 60),
    );
    response
}

/// The product page again with one form refused: 422 or 409 with the
/// API's messages in the form; any other refusal as its problem page.
async fn refused(
    state: &AppState,
    user: &ConsoleUser,
    sku: &str,
    err: ApiError,
    mut form: FormState,
    fields: &[(&str, &'static str)],
    place: impl FnOnce(&mut Forms, FormState),
) -> Response {
    if !form.take_refusal(&err, fields) {
        return problem::page(Some(user), &err);
    }
    let mut forms = Forms::fresh();
    place(&mut forms, form);
    product::page_with(state, user, sku, err.status(), forms).await
}

#[derive(Debug, Default, Deserialize)]
pub struct ReceiveInput {
    #[serde(default)]
    pub quantity: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/products/{sku}/receive`: 303 back with "Received N at
/// LOCATION"; 422 with the form again and the API's message beside each
/// refused field; 403 without the CSRF token.
pub async fn receive(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(sku): Path<String>,
    input: Result<Form<ReceiveInput>, FormRejection>,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let result = match parse_quantity(&input.quantity, "quantity", inventory::MIN_RECEIVE_QUANTITY)
    {
        Err(err) => Err(err),
        Ok(quantity) => {
            let request = ReceiveRequest {
                sku: sku.clone(),
                location: Some(input.location.clone()),
                quantity,
                reason: None,
            };
            inventory::receive_stock(&state, &user.auth, request)
                .await
                .map(|level| (level, quantity))
        }
    };
    match result {
        Ok((level, quantity)) => done_redirect(
            &state,
            &level.sku,
            &Done::Received {
                quantity,
                location: level.location,
            },
        ),
        Err(err) => {
            let form =
                FormState::with(&[("quantity", &input.quantity), ("location", &input.location)]);
            let fields = [("quantity", "quantity"), ("location", "location")];
            refused(&state, &user, &sku, err, form, &fields, |forms, form| {
                forms.receive = form
            })
            .await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ShipInput {
    #[serde(default)]
    pub quantity: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/products/{sku}/ship`: 303 back with "Shipped N from
/// LOCATION"; 422 or 409 with the form again; 403 without the CSRF token.
pub async fn ship(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(sku): Path<String>,
    input: Result<Form<ShipInput>, FormRejection>,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let result = match parse_quantity(&input.quantity, "quantity", 1) {
        Err(err) => Err(err),
        Ok(quantity) => {
            let request = ShipRequest {
                sku: sku.clone(),
                location: input.location.clone(),
                quantity,
                reason: None,
            };
            inventory::ship_stock(&state, &user.auth, request)
                .await
                .map(|level| (level, quantity))
        }
    };
    match result {
        Ok((level, quantity)) => done_redirect(
            &state,
            &level.sku,
            &Done::Shipped {
                quantity,
                location: level.location,
            },
        ),
        Err(err) => {
            let form =
                FormState::with(&[("quantity", &input.quantity), ("location", &input.location)]);
            let fields = [("quantity", "quantity"), ("location", "location")];
            refused(&state, &user, &sku, err, form, &fields, |forms, form| {
                forms.ship = form
            })
            .await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct TransferInput {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub quantity: String,
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/products/{sku}/transfer`: 303 back with "Transferred N
/// from A to B"; 422 or 409 with the form again; 403 without the CSRF token.
pub async fn transfer(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(sku): Path<String>,
    input: Result<Form<TransferInput>, FormRejection>,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let result = match parse_quantity(&input.quantity, "quantity", 1) {
        Err(err) => Err(err),
        Ok(quantity) => {
            let request = TransferRequest {
                sku: sku.clone(),
                from_location: input.from.clone(),
                to_location: input.to.clone(),
                quantity,
                reason: None,
            };
            inventory::transfer_stock(&state, &user.auth, request)
                .await
                .map(|levels| (levels, quantity))
        }
    };
    match result {
        Ok((levels, quantity)) => done_redirect(
            &state,
            &levels.from.sku,
            &Done::Transferred {
                quantity,
                from: levels.from.location,
                to: levels.to.location,
            },
        ),
        Err(err) => {
            let form = FormState::with(&[
                ("from", &input.from),
                ("to", &input.to),
                ("quantity", &input.quantity),
            ]);
            let fields = [
                ("from_location", "from"),
                ("to_location", "to"),
                ("quantity", "quantity"),
            ];
            refused(&state, &user, &sku, err, form, &fields, |forms, form| {
                forms.transfer = form
            })
            .await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct AdjustInput {
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub counted: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/products/{sku}/adjust`: 303 back with "Counted N at
/// LOCATION"; 422 or 409 with the form again; 403 without the CSRF token.
pub async fn adjust(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(sku): Path<String>,
    input: Result<Form<AdjustInput>, FormRejection>,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let result = match parse_quantity(&input.counted, "counted_quantity", 0) {
        Err(err) => Err(err),
        Ok(counted_quantity) => {
            let request = AdjustRequest {
                sku: sku.clone(),
                location: input.location.clone(),
                counted_quantity,
                reason: input.reason.clone(),
            };
            inventory::adjust_stock(&state, &user.auth, request).await
        }
    };
    match result {
        Ok(level) => done_redirect(
            &state,
            &level.sku,
            &Done::Counted {
                quantity: level.on_hand,
                location: level.location,
            },
        ),
        Err(err) => {
            let form = FormState::with(&[
                ("location", &input.location),
                ("counted", &input.counted),
                ("reason", &input.reason),
            ]);
            let fields = [
                ("location", "location"),
                ("counted_quantity", "counted"),
                ("reason", "reason"),
            ];
            refused(&state, &user, &sku, err, form, &fields, |forms, form| {
                forms.adjust = form
            })
            .await
        }
    }
}
