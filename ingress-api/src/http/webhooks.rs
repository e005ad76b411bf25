//! Webhooks: managers register endpoints, list, update and delete them, send a test ping, and read deliveries and dead letters; admins replay dead letters.
//!
//! The notifier does the sending: it records one `webhook_deliveries` row per
//! event and matching endpoint, and its dispatcher signs, sends, retries and
//! finally marks a row `dead`. This module only writes endpoints, enqueues
//! pings and replays, and reads the rows back.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_core::domain::Role;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{AdminUser, AuthUser};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::cursor;
use crate::http::orders::page_limit;
use crate::json_body::JsonBody;
use crate::path_params::PathParams;
use crate::query_params::QueryParams;
use crate::state::AppState;

/// Longest accepted endpoint URL.
pub const MAX_URL_LEN: usize = 2048;
/// Shortest and longest accepted signing secret, in characters.
pub const MIN_SECRET_LEN: usize = 16;
pub const MAX_SECRET_LEN: usize = 256;
/// The event types an endpoint may subscribe to; `*` means all of them.
pub const EVENT_TYPES: [&str; 7] = [
    "order.confirmed",
    "order.rejected",
    "order.cancelled",
    "order.fulfilled",
    "stock.changed",
    "stock.low",
    "stock.recovered",
];
/// The `type` of a test ping.
pub const PING_TYPE: &str = "webhook.ping";
/// The delivery states a listing can filter on.
const STATES: [&str; 3] = ["pending", "delivered", "dead"];

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_webhook,
    list_webhooks,
    update_webhook,
    delete_webhook,
    ping_webhook,
    list_deliveries,
    list_dead_letters,
    replay_delivery
))]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list_webhooks).post(create_webhook))
        .route("/webhooks/dead-letters", get(list_dead_letters))
        .route(
            "/webhooks/{id}",
            patch(update_webhook).delete(delete_webhook),
        )
        .route("/webhooks/{id}/ping", post(ping_webhook))
        .route("/webhooks/{id}/deliveries", get(list_deliveries))
        .route("/webhooks/deliveries/{id}/replay", post(replay_delivery))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `http` or `https` URL with a host, at most 2048 characters.
    pub url: String,
    /// Event types such as `order.confirmed`, or `*` for every type.
    pub events: Vec<String>,
    /// The HMAC-SHA256 key of the `Orderflow-Signature` header, 16 to 256
    /// characters. Never shown again, except masked.
    pub secret: String,
}

/// What to change; at least one field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub secret: Option<String>,
    /// false pauses deliveries (they wait, pending); true resumes them.
    pub active: Option<bool>,
}

/// An endpoint as shown: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    /// The secret's last four characters, for telling secrets apart.
    pub secret_hint: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<Webhook>,
}

/// One attempt to deliver.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attempt {
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    /// The endpoint's HTTP status; absent when it did not answer.
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: Uuid,
    /// Also the `Orderflow-Event-Id` header: receivers dedupe by it.
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub dead_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<Attempt>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<Delivery>,
    /// Absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeliveryQuery {
    /// Only deliveries in this state: `pending`, `delivered` or `dead`.
    pub state: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// A delivery put in the queue (a ping or a replay).
#[derive(Debug, Serialize, ToSchema)]
pub struct Enqueued {
    pub delivery_id: i64,
    pub event_id: Uuid,
}

fn check_url(url: &str) -> Result<(), FieldError> {
    if url.chars().count() > MAX_URL_LEN {
        return Err(
            FieldError::new("url", format!("must be at most {MAX_URL_LEN} characters"))
                .with_limit(MAX_URL_LEN as i64),
        );
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest
        .map(|r| r.split(['/', '?', '#']).next().unwrap_or_default())
        .unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let bare = host.split(':').next().unwrap_or_default();
    if rest.is_none() || bare.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(FieldError::new(
            "url",
            "must be an http or https URL with a host",
        ));
    }
    Ok(())
}

fn check_events(events: &[String]) -> Result<Vec<String>, FieldError> {
    if events.is_empty() {
        return Err(FieldError::new(
            "events",
            "must name at least one event type, or \"*\"",
        ));
    }
    let mut kept: Vec<String> = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        if event != "*" && !EVENT_TYPES.contains(&event.as_str()) {
            return Err(FieldError::new(
                format!("events[{i}]"),
                format!("must be \"*\" or one of {}", EVENT_TYPES.join(", ")),
            ));
        }
        if !kept.contains(event) {
            kept.push(event.clone());
        }
    }
    Ok(kept)
}

fn check_secret(secret: &str) -> Result<(), FieldError> {
    let len = secret.chars().count();
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&len) {
        return Err(FieldError::new(
            "secret",
            format!("must be {MIN_SECRET_LEN} to {MAX_SECRET_LEN} characters"),
        )
        .with_limit(if len < MIN_SECRET_LEN {
            MIN_SECRET_LEN
        } else {
            MAX_SECRET_LEN
        } as i64));
    }
    Ok(())
}

fn hint(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("****{tail}")
}

/// A webhook row as read: id, url, events, secret, active, created_at, updated_at.
type WebhookRow = (
    Uuid,
    String,
    Vec<String>,
    String,
    bool,
    DateTime<Utc>,
    DateTime<Utc>,
);

const WEBHOOK_COLUMNS: &str = "id, url, events, secret, active, created_at, updated_at";

fn view((id, url, events, secret, active, created_at, updated_at): WebhookRow) -> Webhook {
    Webhook {
        id,
        url,
        events,
        secret_hint: hint(&secret),
        active,
        created_at,
        updated_at,
    }
}

/// Path ids that are not uuids are unknown webhooks, not malformed requests.
fn webhook_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("webhook"))
}

/// Register a webhook endpoint (manager).
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, body = Webhook), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn create_webhook(
    user: AuthUser,
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewWebhook>,
) -> ApiResult<(StatusCode, Json<Webhook>)> {
    let webhook = register_webhook(&state, &user, new).await?;
    Ok((StatusCode::CREATED, Json(webhook)))
}

/// Registers `new` for `user` (manager), as `POST /webhooks` does.
pub async fn register_webhook(
    state: &AppState,
    user: &AuthUser,
    new: NewWebhook,
) -> ApiResult<Webhook> {
    user.require(Role::Manager)?;
    let events = check_events(&new.events);
    let errors: Vec<FieldError> = [
        check_url(&new.url).err(),
        events.clone().err(),
        check_secret(&new.secret).err(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let row: WebhookRow = sqlx::query_as(&format!(
        "insert into webhooks (id, url, events, secret, created_by)
         values ($1, $2, $3, $4, $5) returning {WEBHOOK_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(&new.url)
    .bind(events.unwrap_or_default())
    .bind(&new.secret)
    .bind(user.id)
    .fetch_one(&state.pool)
    .await?;
    Ok(view(row))
}

/// List webhook endpoints (manager), oldest first; secrets are masked.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_webhooks(
    user: AuthUser,
    State(state): State<AppState>,
) -> ApiResult<Json<WebhookList>> {
    Ok(Json(WebhookList {
        items: webhooks(&state, &user).await?,
    }))
}

/// Every endpoint (manager), oldest first, as `GET /webhooks` lists them.
pub async fn webhooks(state: &AppState, user: &AuthUser) -> ApiResult<Vec<Webhook>> {
    user.require(Role::Manager)?;
    let rows: Vec<WebhookRow> = sqlx::query_as(&format!(
        "select {WEBHOOK_COLUMNS} from webhooks order by created_at, id"
    ))
    .fetch_all(&state.pool)
    .await?;
    Ok(rows.into_iter().map(view).collect())
}

/// Change a webhook endpoint (manager).
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", request_body = WebhookChange,
    params(("id" = Uuid, Path, description = "The webhook")),
    responses((status = 200, body = Webhook), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn update_webhook(
    user: AuthUser,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonBody(change): JsonBody<WebhookChange>,
) -> ApiResult<Json<Webhook>> {
    user.require(Role::Manager)?;
    let id = webhook_id(&id)?;
    if change.url.is_none()
        && change.events.is_none()
        && change.secret.is_none()
        && change.active.is_none()
    {
        return Err(ApiError::field(
            "body",
            "must change at least one of url, events, secret, active",
        ));
    }
    let events = change.events.as_deref().map(check_events).transpose();
    let errors: Vec<FieldError> = [
        change.url.as_deref().map(check_url).transpose().err(),
        events.clone().err(),
        change.secret.as_deref().map(check_secret).transpose().err(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let row: Option<WebhookRow> = sqlx::query_as(&format!(
        "update webhooks
         set url = coalesce($2, url), events = coalesce($3, events),
             secret = coalesce($4, secret), active = coalesce($5, active),
             updated_at = now()
         where id = $1 returning {WEBHOOK_COLUMNS}"
    ))
    .bind(id)
    .bind(change.url)
    .bind(events.unwrap_or_default())
    .bind(change.secret)
    .bind(change.active)
    .fetch_optional(&state.pool)
    .await?;
    row.map(|r| Json(view(r)))
        .ok_or(ApiError::NotFound("webhook"))
}

/// Delete a webhook endpoint and its delivery history (manager).
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The webhook")),
    responses((status = 204), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn delete_webhook(
    user: AuthUser,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<StatusCode> {
    user.require(Role::Manager)?;
    let id = webhook_id(&id)?;
    let deleted = sqlx::query("delete from webhooks where id = $1")
        .bind(id)
        .execute(&state.pool)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(ApiError::NotFound("webhook"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Send a test `webhook.ping` event to the endpoint (manager). The delivery
/// is queued; the notifier sends it, signed and retried like any other.
#[utoipa::path(post, path = "/webhooks/{id}/ping", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The webhook")),
    responses((status = 202, body = Enqueued), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 409, description = "The webhook is paused", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn ping_webhook(
    user: AuthUser,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<Enqueued>)> {
    Ok((StatusCode::ACCEPTED, Json(ping(&state, &user, &id).await?)))
}

/// Queues a test ping to webhook `id` (manager), as
/// `POST /webhooks/{id}/ping` does.
pub async fn ping(state: &AppState, user: &AuthUser, id: &str) -> ApiResult<Enqueued> {
    user.require(Role::Manager)?;
    let id = webhook_id(id)?;
    let active: Option<bool> = sqlx::query_scalar("select active from webhooks where id = $1")
        .bind(id)
        .fetch_optional(&state.pool)
        .await?;
    match active {
        None => return Err(ApiError::NotFound("webhook")),
        Some(false) => {
            return Err(ApiError::Conflict(
                "the webhook is paused; activate it to ping it".into(),
            ))
        }
        Some(true) => {}
    }
    let event_id = Uuid::now_v7();
    let payload = serde_json::json!({
        "event_id": event_id,
        "occurred_at": Utc::now(),
        "type": PING_TYPE,
        "webhook_id": id,
    });
    // The event id as ordering key: a ping waits for nothing and holds up
    // nothing. The webhook may be deleted between the two statements; the
    // foreign key then refuses the insert, which is a 404.
    let delivery_id: i64 = sqlx::query_scalar(
        "insert into webhook_deliveries (webhook_id, event_id, event_type, ordering_key, payload)
         values ($1, $2, $3, $4, $5) returning id",
    )
    .bind(id)
    .bind(event_id)
    .bind(PING_TYPE)
    .bind(format!("ping:{event_id}"))
    .bind(&payload)
    .fetch_one(&state.pool)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.constraint() == Some("webhook_deliveries_webhook_fkey") => {
            ApiError::NotFound("webhook")
        }
        _ => ApiError::Database(err),
    })?;
    Ok(Enqueued {
        delivery_id,
        event_id,
    })
}

/// A delivery row as read, attempts aside.
#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    webhook_id: Uuid,
    event_id: Uuid,
    event_type: String,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_status: Option<i32>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    dead_at: Option<DateTime<Utc>>,
}

/// An attempt row as read: delivery_id, attempt, attempted_at, status_code,
/// error, duration_ms.
type AttemptRow = (i64, i32, DateTime<Utc>, Option<i32>, Option<String>, i32);

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, state, attempts,
    next_attempt_at, last_status, last_error, created_at, delivered_at, dead_at";

/// The page of `rows` (fetched with one row more than `limit`) with each
/// delivery's attempts, read in one query.
async fn page(state: &AppState, mut rows: Vec<DeliveryRow>, limit: i64) -> ApiResult<DeliveryPage> {
    let next_cursor =
        cursor::next_page(&mut rows, limit, |r| cursor::encode_text(&r.id.to_string()));
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let attempts: Vec<AttemptRow> = sqlx::query_as(
        "select delivery_id, attempt, attempted_at, status_code, error, duration_ms
             from webhook_attempts where delivery_id = any ($1) order by id",
    )
    .bind(&ids)
    .fetch_all(&state.pool)
    .await?;
    let mut by_delivery: HashMap<i64, Vec<Attempt>> = HashMap::new();
    for (delivery_id, attempt, attempted_at, status_code, error, duration_ms) in attempts {
        by_delivery.entry(delivery_id).or_default().push(Attempt {
            attempt,
            attempted_at,
            status_code,
            error,
            duration_ms,
        });
    }
    let items = rows
        .into_iter()
        .map(|r| Delivery {
            attempt_log: by_delivery.remove(&r.id).unwrap_or_default(),
            id: r.id,
            webhook_id: r.webhook_id,
            event_id: r.event_id,
            event_type: r.event_type,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_status: r.last_status,
            last_error: r.last_error,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
            dead_at: r.dead_at,
        })
        .collect();
    Ok(DeliveryPage { items, next_cursor })
}

fn after(cursor_text: Option<&str>) -> ApiResult<Option<i64>> {
    cursor_text
        .map(|c| {
            cursor::decode_text(c)?
                .parse::<i64>()
                .map_err(|_| ApiError::field("cursor", "is not a cursor this API gave out"))
        })
        .transpose()
}

/// A webhook's deliveries with their attempts (manager), newest first.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The webhook"), DeliveryQuery),
    responses((status = 200, body = DeliveryPage), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_deliveries(
    user: AuthUser,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<DeliveryQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    Ok(Json(deliveries(&state, &user, &id, query).await?))
}

/// A page of webhook `id`'s deliveries with their attempts (manager),
/// newest first, as `GET /webhooks/{id}/deliveries` answers it.
pub async fn deliveries(
    state: &AppState,
    user: &AuthUser,
    id: &str,
    query: DeliveryQuery,
) -> ApiResult<DeliveryPage> {
    user.require(Role::Manager)?;
    let id = webhook_id(id)?;
    let limit = page_limit(query.limit)?;
    if let Some(s) = query.state.as_deref() {
        if !STATES.contains(&s) {
            return Err(ApiError::field(
                "state",
                "must be pending, delivered or dead",
            ));
        }
    }
    let after = after(query.cursor.as_deref())?;
    let exists: Option<i32> = sqlx::query_scalar("select 1 from webhooks where id = $1")
        .bind(id)
        .fetch_optional(&state.pool)
        .await?;
    if exists.is_none() {
        return Err(ApiError::NotFound("webhook"));
    }
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "select {DELIVERY_COLUMNS} from webhook_deliveries
         where webhook_id = $1
           and ($2::text is null or state = $2)
           and ($3::bigint is null or id < $3)
         order by id desc limit $4"
    ))
    .bind(id)
    .bind(query.state)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    page(state, rows, limit).await
}

/// Deliveries that gave up after their last attempt, over all webhooks
/// (admin), newest first.
#[utoipa::path(get, path = "/webhooks/dead-letters", tag = "webhooks", params(PageQuery),
    responses((status = 200, body = DeliveryPage), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_dead_letters(
    AdminUser(admin): AdminUser,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<PageQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    Ok(Json(dead_letters(&state, &admin, query).await?))
}

/// A page of dead deliveries over all webhooks (admin), newest first, as
/// `GET /webhooks/dead-letters` answers it.
pub async fn dead_letters(
    state: &AppState,
    user: &AuthUser,
    query: PageQuery,
) -> ApiResult<DeliveryPage> {
    user.require(Role::Admin)?;
    let limit = page_limit(query.limit)?;
    let after = after(query.cursor.as_deref())?;
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "select {DELIVERY_COLUMNS} from webhook_deliveries
         where state = 'dead' and ($1::bigint is null or id < $1)
         order by id desc limit $2"
    ))
    .bind(after)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    page(state, rows, limit).await
}

/// Put a dead delivery back in the queue with its attempts reset (admin).
/// Its attempt history stays.
#[utoipa::path(post, path = "/webhooks/deliveries/{id}/replay", tag = "webhooks",
    params(("id" = i64, Path, description = "The delivery")),
    responses((status = 202, body = Enqueued), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 409, description = "The delivery is not dead", body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn replay_delivery(
    AdminUser(admin): AdminUser,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> ApiResult<(StatusCode, Json<Enqueued>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(replay(&state, &admin, &id).await?),
    ))
}

/// Puts dead delivery `id` back in the queue (admin), as
/// `POST /webhooks/deliveries/{id}/replay` does.
pub async fn replay(state: &AppState, user: &AuthUser, id: &str) -> ApiResult<Enqueued> {
    user.require(Role::Admin)?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("delivery"))?;
    let replayed: Option<Uuid> = sqlx::query_scalar(
        "update webhook_deliveries
         set state = 'pending', attempts = 0, next_attempt_at = now(),
             leased_until = null, dead_at = null
         where id = $1 and state = 'dead'
         returning event_id",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    if let Some(event_id) = replayed {
        return Ok(Enqueued {
            delivery_id: id,
            event_id,
        });
    }
    let current: Option<String> =
        sqlx::query_scalar("select state from webhook_deliveries where id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?;
    match current {
        None => Err(ApiError::NotFound("delivery")),
        Some(s) => Err(ApiError::Conflict(format!(
            "only a dead delivery can be replayed; this one is {s}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_an_http_scheme_and_a_host() {
        assert!(check_url("https://example.com/hooks").is_ok());
        assert!(check_url("http://127.0.0.1:8080").is_ok());
        assert!(check_url("ftp://example.com").is_err());
        assert!(check_url("https:///path").is_err());
        assert!(check_url("https://exa mple.com").is_err());
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn a_secret_is_shown_only_by_its_last_four_characters() {
        assert_eq!(hint("0123456789abcdef"), "****cdef");
    }
}
