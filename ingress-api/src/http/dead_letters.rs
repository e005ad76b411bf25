//! `GET /dead-letters`: the order commands the processor gave up on (admin).
//!
//! Read straight from the DEAD_ORDERS stream, newest first, by stream
//! sequence: the stream is the only record of them (a command the database
//! refused has no row there to read), it keeps them 30 days, and an admin
//! page reading a few dozen messages by sequence costs nothing worth a table.

use async_nats::jetstream::stream::RawMessageErrorKind;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use orderflow_core::dead_letter::DeadLetter;
use serde::{Deserialize, Serialize};
use tracing::warn;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::AdminUser;
use crate::error::{ApiError, ApiResult};
use crate::http::cursor;
use crate::http::orders::page_limit;
use crate::query_params::QueryParams;
use crate::state::AppState;

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_dead_letters))]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new().route("/dead-letters", get(list_dead_letters))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    pub cursor: Option<String>,
    /// 1 to 100; 50 when absent.
    pub limit: Option<i64>,
}

/// An order command the processor gave up on.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadOrderCommand {
    /// Its sequence in the dead-letter stream.
    pub sequence: u64,
    /// The subject it was queued on; publishing `payload` there again
    /// replays it.
    pub subject: String,
    /// Its sequence in the ORDERS stream.
    pub stream_seq: u64,
    pub partition: Option<u16>,
    /// The order it is about, when the payload or the subject says.
    pub order_id: Option<Uuid>,
    /// Commits tried; 0 when it could not even be decoded.
    pub attempts: u32,
    /// `undecodable` or `database`.
    pub reason_kind: String,
    pub reason: String,
    pub dead_lettered_at: DateTime<Utc>,
    /// The original message body (as text; bytes that are not UTF-8 are
    /// replaced).
    pub payload: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterPage {
    pub items: Vec<DeadOrderCommand>,
    pub next_cursor: Option<String>,
}

fn unavailable() -> ApiError {
    ApiError::Unavailable {
        detail: "the dead-letter stream cannot be read right now".into(),
        retry_after_seconds: 1,
    }
}

/// Dead-lettered order commands, newest first (admin).
#[utoipa::path(get, path = "/dead-letters", tag = "orders", params(DeadLetterQuery),
    responses((status = 200, body = DeadLetterPage), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem),
              (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_dead_letters(
    _admin: AdminUser,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<DeadLetterQuery>,
) -> ApiResult<Json<DeadLetterPage>> {
    let limit = page_limit(query.limit)?;
    let before = query
        .cursor
        .as_deref()
        .map(|c| {
            cursor::decode_text(c)?
                .parse::<u64>()
                .map_err(|_| ApiError::field("cursor", "is not a cursor this API gave out"))
        })
        .transpose()?;
    let info = state.dead_orders.get_info().await.map_err(|err| {
        warn!(%err, "cannot read the dead-letter stream");
        unavailable()
    })?;
    let mut items = Vec::new();
    let mut sequence = match before {
        Some(before) => before.saturating_sub(1).min(info.state.last_sequence),
        None => info.state.last_sequence,
    };
    while sequence >= info.state.first_sequence.max(1) && (items.len() as i64) <= limit {
        match state.dead_orders.get_raw_message(sequence).await {
            Ok(message) => {
                if let Some(item) = item(&state, sequence, &message) {
                    items.push(item);
                }
            }
            // Aged out or deleted meanwhile.
            Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => {}
            Err(err) => {
                warn!(%err, sequence, "cannot read a dead letter");
                return Err(unavailable());
            }
        }
        sequence -= 1;
    }
    let next_cursor = cursor::next_page(&mut items, limit, |i| {
        cursor::encode_text(&i.sequence.to_string())
    });
    Ok(Json(DeadLetterPage { items, next_cursor }))
}

fn item(
    state: &AppState,
    sequence: u64,
    message: &async_nats::jetstream::message::StreamMessage,
) -> Option<DeadOrderCommand> {
    let Some(letter) = DeadLetter::from_headers(&message.headers) else {
        warn!(sequence, "a dead letter without its headers; skipped");
        return None;
    };
    let from_payload = serde_json::from_slice::<serde_json::Value>(&message.payload)
        .ok()
        .and_then(|v| v.get("order_id")?.as_str()?.parse::<Uuid>().ok());
    // `orders.p<N>.<order_id>` or `orders.p<N>.<order_id>.<action>`.
    let from_subject = || {
        letter
            .subject
            .split('.')
            .find_map(|part| part.parse::<Uuid>().ok())
    };
    Some(DeadOrderCommand {
        sequence,
        partition: state.naming.dead_order_partition(&message.subject),
        order_id: from_payload.or_else(from_subject),
        subject: letter.subject,
        stream_seq: letter.stream_seq,
        attempts: letter.attempts,
        reason_kind: letter.reason_kind.as_str().to_owned(),
        reason: letter.reason,
        dead_lettered_at: letter.dead_lettered_at,
        payload: String::from_utf8_lossy(&message.payload).into_owned(),
    })
}
