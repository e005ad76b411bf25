//! `GET /console/webhooks` (manager, admin): the endpoints as
//! `GET /webhooks` lists them and the register form; `POST` registers
//! through the same function as `POST /webhooks`, and
//! `POST /console/webhooks/{id}/ping` queues a ping as
//! `POST /webhooks/{id}/ping` does.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::console::layout::{render, sentence, Layout, Section};
use crate::console::notice::{self, Notice};
use crate::console::problem;
use crate::console::session::ConsoleUser;
use crate::error::ApiError;
use crate::http::webhooks::{self, NewWebhook, Webhook, EVENT_TYPES};
use crate::state::AppState;

/// The page every webhook action returns to.
const PATH: &str = "/console/webhooks";

/// The events value that subscribes to every event type.
const ALL_EVENTS: &str = "*";

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct WebhooksPage {
    layout: Layout,
    webhooks: Vec<Webhook>,
    form: RegisterForm,
    /// The choices of the events checkboxes: `*` first, then each type.
    event_choices: Vec<&'static str>,
    notice: Option<&'static str>,
    /// Why a ping was refused (a paused webhook).
    ping_error: Option<String>,
    /// Whether to link the dead letters, which only admins may open.
    show_dead_letters: bool,
    csrf: String,
}

/// The register form as shown: what was entered, and the API's refusal of
/// each field. The secret is never sent back into the page.
#[derive(Debug, Clone, Default)]
struct RegisterForm {
    url: String,
    events: Vec<String>,
    url_error: Option<String>,
    events_error: Option<String>,
    secret_error: Option<String>,
    /// A refusal of no field in the form.
    error: Option<String>,
}

impl RegisterForm {
    fn checked(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }
}

fn webhooks_page(
    status: StatusCode,
    user: &ConsoleUser,
    webhooks: Vec<Webhook>,
    form: RegisterForm,
    notice: Option<&'static str>,
    ping_error: Option<String>,
) -> Response {
    let mut event_choices = vec![ALL_EVENTS];
    event_choices.extend(EVENT_TYPES);
    render(
        status,
        &WebhooksPage {
            layout: Layout::new(Some(user), Section::Webhooks, "Webhooks"),
            webhooks,
            form,
            event_choices,
            notice,
            ping_error,
            show_dead_letters: user.is_admin(),
            csrf: user.csrf.clone(),
        },
    )
}

/// The page again after a refused action, with the endpoints read afresh.
async fn refused_page(
    state: &AppState,
    user: &ConsoleUser,
    status: StatusCode,
    form: RegisterForm,
    ping_error: Option<String>,
) -> Response {
    match webhooks::webhooks(state, &user.auth).await {
        Ok(list) => webhooks_page(status, user, list, form, None, ping_error),
        Err(err) => problem::page(Some(user), &err),
    }
}

pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
) -> Response {
    let list = match webhooks::webhooks(&state, &user.auth).await {
        Ok(list) => list,
        Err(err) => return problem::page(Some(&user), &err),
    };
    let shown = notice::read(&headers);
    let response = webhooks_page(
        StatusCode::OK,
        &user,
        list,
        RegisterForm::default(),
        shown.map(Notice::message),
        None,
    );
    notice::consume(&state, shown, response)
}

/// The register form as sent: `url`, `secret`, `csrf` and one `events` per
/// ticked box. Read by hand because a form's repeated field is a list.
#[derive(Debug, Default)]
struct RegisterInput {
    url: String,
    events: Vec<String>,
    secret: String,
    csrf: String,
}

impl RegisterInput {
    fn parse(body: &[u8]) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let mut input = RegisterInput::default();
        for (name, value) in pairs {
            match name.as_str() {
                "url" => input.url = value,
                "events" => input.events.push(value),
                "secret" => input.secret = value,
                "csrf" => input.csrf = value,
                _ => {}
            }
        }
        input
    }
}

/// `POST /console/webhooks`: 303 back with "Webhook registered"; 422 with
/// the form again and the API's message beside each refused field; 403
/// without the CSRF token.
pub async fn register(State(state): State<AppState>, user: ConsoleUser, body: Bytes) -> Response {
    let input = RegisterInput::parse(&body);
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    let new = NewWebhook {
        url: input.url.trim().to_owned(),
        events: input.events.clone(),
        secret: input.secret,
    };
    let err = match webhooks::register_webhook(&state, &user.auth, new).await {
        Ok(_) => return notice::redirect(&state, PATH, Notice::WebhookRegistered),
        Err(err) => err,
    };
    let mut form = RegisterForm {
        url: input.url,
        events: input.events,
        ..RegisterForm::default()
    };
    match &err {
        ApiError::Validation(errors) => {
            let mut others = Vec::new();
            for error in errors {
                match error.field.as_str() {
                    "url" => form.url_error = Some(error.message.clone()),
                    "events" => form.events_error = Some(error.message.clone()),
                    "secret" => form.secret_error = Some(error.message.clone()),
                    _ => others.push(format!("{} {}", error.field, error.message)),
                }
            }
            if !others.is_empty() {
                form.error = Some(sentence(&others.join("; ")));
            }
        }
        _ => return problem::page(Some(&user), &err),
    }
    refused_page(&state, &user, err.status(), form, None).await
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct PingInput {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/webhooks/{id}/ping`: 303 back with "Ping queued"; 409
/// (a paused webhook) with the page and the refusal in an alert.
pub async fn ping(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    input: Result<axum::Form<PingInput>, axum::extract::rejection::FormRejection>,
) -> Response {
    let input = input.map(|axum::Form(input)| input).unwrap_or_default();
    if !user.csrf_matches(&state, &input.csrf) {
        return problem::csrf_refused(&user);
    }
    match webhooks::ping(&state, &user.auth, &id).await {
        Ok(_) => notice::redirect(&state, PATH, Notice::PingQueued),
        Err(err @ ApiError::Conflict(_)) => {
            let message = sentence(&err.public_detail());
            refused_page(
                &state,
                &user,
                err.status(),
                RegisterForm::default(),
                Some(message),
            )
            .await
        }
        Err(err) => problem::page(Some(&user), &err),
    }
}
