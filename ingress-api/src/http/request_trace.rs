//! The trace of each request: a valid `traceparent` from the client is
//! continued, anything else starts a new trace. The context this request
//! passes on (with its request id) goes into the request's extensions, where
//! the handlers that queue commands find it, and the request's log line
//! ([`super::request_metrics`]) reads its trace id from there.
//!
//! While OTLP export is on, each request is also a span (the remote parent
//! being the client's context), and the context passed on is that span's, so
//! the processor's spans hang under it. While it is off, no span is made.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use orderflow_core::otel;
use orderflow_core::trace_context::{MessageTrace, RequestId, TraceContext, TRACEPARENT};
use tracing::Instrument;
use uuid::Uuid;

use super::request_metrics::REQUEST_ID;

/// What a request carries on into the messages it queues: its trace
/// context (a child of the client's) and its request id.
#[derive(Debug, Clone)]
pub struct RequestTrace(pub MessageTrace);

impl RequestTrace {
    /// A new trace without a request id, for code that runs outside a
    /// request (tests driving a handler directly).
    pub fn detached() -> Self {
        Self(MessageTrace::new(TraceContext::new_root(), None))
    }
}

/// Put into a response's extensions by a handler that accepted a command
/// for an order, so the request's log line names the order.
#[derive(Debug, Clone, Copy)]
pub struct LoggedOrderId(pub Uuid);

pub async fn start(mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let incoming = headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| TraceContext::parse(v).ok());
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::parse);
    let span = if otel::enabled() {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| p.as_str());
        let method = request.method().as_str();
        tracing::info_span!(
            target: otel::SPAN_TARGET,
            "request",
            otel.name = format!("{method} {route}"),
            otel.kind = "server",
            http.request.method = method,
            http.route = route,
            http.response.status_code = tracing::field::Empty,
            request_id = request_id.as_ref().map(RequestId::as_str),
        )
    } else {
        tracing::Span::none()
    };
    let context = otel::adopt(&span, incoming.as_ref());
    request
        .extensions_mut()
        .insert(RequestTrace(MessageTrace::new(context, request_id)));
    let mut response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    // The client learns the trace its request joined, or the one it started.
    if let Ok(value) = HeaderValue::from_str(&context.to_string()) {
        response.headers_mut().insert(TRACEPARENT, value);
    }
    response
}
