//! `GET /console/orders/{id}`: an order's status, reason, items and times,
//! with Fulfil and Cancel buttons that queue the same commands as
//! `POST /orders/{id}/fulfil` and `POST /orders/{id}/cancel`.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use orderflow_core::domain::{OrderStatus, Role};
use serde::Deserialize;
use uuid::Uuid;

use crate::console::layout::{render, sentence, Layout, Section};
use crate::console::notice::{self, Notice};
use crate::console::problem;
use crate::console::session::ConsoleUser;
use crate::error::{ApiError, ApiResult};
use crate::http::orders;
use crate::http::request_trace::RequestTrace;
use crate::order_records::OrderView;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/order.html")]
struct OrderPage {
    layout: Layout,
    order: OrderView,
    /// Whether the Fulfil and Cancel buttons are shown: staff and above, and
    /// only while the order can still be settled.
    may_settle: bool,
    notice: Option<&'static str>,
    /// Why the last Fulfil or Cancel was refused.
    error: Option<String>,
    csrf: String,
}

fn order_page(
    status: StatusCode,
    user: &ConsoleUser,
    order: OrderView,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let may_settle = user.auth.role.includes(Role::Staff)
        && matches!(order.status, OrderStatus::Pending | OrderStatus::Confirmed);
    render(
        status,
        &OrderPage {
            layout: Layout::new(
                Some(user),
                Section::Orders,
                format!("Order {}", order.order_id),
            ),
            order,
            may_settle,
            notice,
            error,
            csrf: user.csrf.clone(),
        },
    )
}

/// The order id in a path: anything that is no UUID names no order.
fn order_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("order"))
}

pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let order = match order_id(&raw_id) {
        Ok(id) => orders::order_detail(&state, &user.auth, id).await,
        Err(err) => Err(err),
    };
    let order = match order {
        Ok(order) => order,
        Err(err) => return problem::page(Some(&user), &err),
    };
    let shown = notice::read(&headers);
    let response = order_page(
        StatusCode::OK,
        &user,
        order,
        shown.map(Notice::message),
        None,
    );
    notice::consume(&state, shown, response)
}

#[derive(Debug, Default, Deserialize)]
pub struct ActionInput {
    #[serde(default)]
    pub csrf: String,
}

#[derive(Clone, Copy)]
enum Action {
    Fulfil,
    Cancel,
}

/// `POST /console/orders/{id}/fulfil`: 303 back to the order with "Fulfilment
/// queued"; 409 with the order page and the refusal beside the buttons.
pub async fn fulfil(
    State(state): State<AppState>,
    user: ConsoleUser,
    trace: Option<Extension<RequestTrace>>,
    Path(raw_id): Path<String>,
    input: Result<Form<ActionInput>, FormRejection>,
) -> Response {
    act(state, user, trace, raw_id, input, Action::Fulfil).await
}

/// `POST /console/orders/{id}/cancel`: as [`fulfil`], for a cancellation.
pub async fn cancel(
    State(state): State<AppState>,
    user: ConsoleUser,
    trace: Option<Extension<RequestTrace>>,
    Path(raw_id): Path<String>,
    input: Result<Form<ActionInput>, FormRejection>,
) -> Response {
    act(state, user, trace, raw_id, input, Action::Cancel).await
}

async fn act(
    state: AppState,
    user: ConsoleUser,
    trace: Option<Extension<RequestTrace>>,
    raw_id: String,
    input: Result<Form<ActionInput>, FormRejection>,
    action: Action,
) -> Response {
    let input = input.map(|Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let id = match order_id(&raw_id) {
        Ok(id) => id,
        Err(err) => return problem::page(Some(&user), &err),
    };
    let trace = orders::request_trace(trace);
    let result = match action {
        Action::Fulfil => orders::fulfil(&state, &user.auth, id, &trace).await,
        Action::Cancel => orders::cancel(&state, &user.auth, id, &trace).await,
    };
    let err = match result {
        Ok(_) => {
            let shown = match action {
                Action::Fulfil => Notice::FulfilmentQueued,
                Action::Cancel => Notice::CancellationQueued,
            };
            return notice::redirect(&state, &format!("/console/orders/{id}"), shown);
        }
        Err(err @ ApiError::Conflict(_)) => err,
        Err(err) => return problem::page(Some(&user), &err),
    };
    match orders::order_detail(&state, &user.auth, id).await {
        Ok(order) => order_page(
            err.status(),
            &user,
            order,
            None,
            Some(sentence(&err.public_detail())),
        ),
        Err(load_err) => problem::page(Some(&user), &load_err),
    }
}
