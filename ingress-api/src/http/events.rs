//! Live updates: `GET /events/stream` as Server-Sent Events.
//!
//! Every connection reads the EVENTS stream through an ordered consumer of
//! its own, so every replica behind a load balancer delivers every event
//! (fan-out goes through NATS, not memory), and a client that reconnects with
//! `Last-Event-ID` resumes right after the last event it saw, with no gap, for
//! as long as the stream retains events. The SSE `id` of an event is its
//! stream sequence.
//!
//! Each caller sees what they may see: a customer only the events of their
//! own orders; staff and above every event, stock and alerts included.

use std::convert::Infallible;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::{Stream, StreamExt};
use orderflow_core::domain::Role;
use orderflow_core::event::{Event, EventEnvelope};
use orderflow_core::metric_names;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::query_params::QueryParams;
use crate::state::AppState;

/// How often an idle stream sends a comment, so proxies keep it open and a
/// dead client is noticed.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(stream))]
pub struct Api;

pub fn router() -> Router<AppState> {
    Router::new().route("/events/stream", get(stream))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamQuery {
    /// The access token, for clients that cannot send an Authorization
    /// header (a browser's EventSource).
    pub access_token: Option<String>,
    /// Resume after this event id, for clients that cannot send the
    /// `Last-Event-ID` header.
    pub last_event_id: Option<u64>,
}

/// Whether `user` may see `event`.
pub fn visible_to(user: &AuthUser, event: &Event) -> bool {
    match event {
        Event::OrderConfirmed(e) => user.may_see(e.customer_id),
        Event::OrderRejected(e) => user.may_see(e.customer_id),
        Event::OrderCancelled(e) | Event::OrderFulfilled(e) => user.may_see(e.customer_id),
        Event::StockChanged(_) | Event::StockLow(_) | Event::StockRecovered(_) => {
            user.role.includes(Role::Staff)
        }
    }
}

/// Events as they happen, as Server-Sent Events: `id` is the event's stream
/// sequence, `event` its type, `data` the event JSON.
#[utoipa::path(
    get, path = "/events/stream", tag = "events", params(StreamQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume right after this event")),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream"),
        (status = 401, description = "No valid token", body = crate::error::Problem),
        (status = 422, description = "A Last-Event-ID that is not an event id", body = crate::error::Problem),
        (status = 503, description = "The broker cannot be read now", body = crate::error::Problem),
    ),
    security(("bearer" = []))
)]
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(query): QueryParams<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or(query.access_token)
        .ok_or(ApiError::Unauthorized(
            "an Authorization: Bearer token or an access_token parameter is required",
        ))?;
    let user = AuthUser::from_token(&state, &token)?;
    let resume_after = match resume_point(&headers)? {
        Some(last) => Some(last),
        None => query.last_event_id,
    };
    open(state, user, resume_after).await
}

/// The event id a reconnecting client saw last, from `Last-Event-ID` (which
/// a browser's EventSource sends by itself when it reconnects).
pub fn resume_point(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    headers
        .get("last-event-id")
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::field("Last-Event-ID", "must be an event id this stream sent")
                })
        })
        .transpose()
}

/// The live stream of what `user` may see, from right after `resume_after`
/// or from now: the one implementation behind `GET /events/stream` and the
/// web console's feed.
pub async fn open(
    state: AppState,
    user: AuthUser,
    resume_after: Option<u64>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let deliver_policy = match resume_after {
        Some(last) => DeliverPolicy::ByStartSequence {
            start_sequence: last + 1,
        },
        None => DeliverPolicy::New,
    };
    let unavailable = |err: String| {
        tracing::warn!(%err, "cannot open a live event stream");
        ApiError::Unavailable {
            detail: "live events cannot be read right now".into(),
            retry_after_seconds: 2,
        }
    };
    let messages = state
        .events
        .create_consumer(OrderedConfig {
            filter_subject: state.naming.events_subjects(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(e.to_string()))?
        .messages()
        .await
        .map_err(|e| unavailable(e.to_string()))?;

    let connection = LiveConnection::open();
    let events = messages
        // A broken consumer ends the stream; the client reconnects with
        // Last-Event-ID and loses nothing.
        .take_while(|message| std::future::ready(message.is_ok()))
        .filter_map(move |message| {
            let _open = &connection;
            std::future::ready(message.ok().and_then(|m| to_sse(&user, &m)))
        })
        // A token revoked while the stream is open ends it.
        .take_while(move |_| std::future::ready(user.still_honoured(&state)))
        .map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// The SSE event for a message, when `user` may see it. Messages that are not
/// events this build knows are skipped.
fn to_sse(user: &AuthUser, message: &async_nats::jetstream::Message) -> Option<SseEvent> {
    let sequence = message.info().ok()?.stream_sequence;
    let envelope: EventEnvelope = serde_json::from_slice(&message.payload).ok()?;
    if !visible_to(user, &envelope.event) {
        return None;
    }
    let data = std::str::from_utf8(&message.payload).ok()?;
    Some(
        SseEvent::default()
            .id(sequence.to_string())
            .event(envelope.event.kind())
            .data(data),
    )
}

/// Counts an open live stream for as long as it lives.
struct LiveConnection;

impl LiveConnection {
    fn open() -> Self {
        metrics::gauge!(metric_names::LIVE_CONNECTIONS).increment(1.0);
        LiveConnection
    }
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        metrics::gauge!(metric_names::LIVE_CONNECTIONS).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_core::event::{OrderConfirmed, StockChanged};
    use uuid::Uuid;

    fn user(role: Role) -> AuthUser {
        AuthUser {
            id: Uuid::from_u128(1),
            role,
            token_version: 0,
        }
    }

    #[test]
    fn customers_see_only_their_own_orders_and_staff_see_everything() {
        let own = Event::OrderConfirmed(OrderConfirmed {
            order_id: Uuid::nil(),
            customer_id: Uuid::from_u128(1),
            items: vec![],
        });
        let other = Event::OrderConfirmed(OrderConfirmed {
            order_id: Uuid::nil(),
            customer_id: Uuid::from_u128(2),
            items: vec![],
        });
        let stock = Event::StockChanged(StockChanged {
            sku: "A".into(),
            on_hand: 1,
            reserved: 0,
            available: 1,
        });
        let customer = user(Role::Customer);
        assert!(visible_to(&customer, &own));
        assert!(!visible_to(&customer, &other));
        assert!(!visible_to(&customer, &stock));
        let staff = user(Role::Staff);
        assert!(visible_to(&staff, &other));
        assert!(visible_to(&staff, &stock));
    }
}
