//! Counts and times every request by route template, method and status, and
//! writes one log line per request with its request id, trace id and, for a
//! command about an order, the order id. Neither the line nor
//! the metrics carry headers or bodies, so no token or password reaches them.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use orderflow_core::metric_names;

use super::request_trace::{LoggedOrderId, RequestTrace};

/// The header carrying a request's id: the client's, or one made up here.
pub const REQUEST_ID: &str = "x-request-id";

pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // The route template, not the path, so ids do not explode the label set.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let trace_id = request
        .extensions()
        .get::<RequestTrace>()
        .and_then(|t| t.0.trace_id());
    let in_flight = InFlight::enter(route.clone());
    let response = next.run(request).await;
    drop(in_flight);
    let order_id = response.extensions().get::<LoggedOrderId>().map(|o| o.0);
    let status = response.status().as_u16().to_string();
    metrics::counter!(metric_names::HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    let elapsed = started.elapsed();
    tracing::info!(
        target: "orderflow::request",
        %method,
        %route,
        status = response.status().as_u16(),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        %request_id,
        trace_id = trace_id.map(tracing::field::display),
        order_id = order_id.map(tracing::field::display),
        "request"
    );
    metrics::histogram!(metric_names::HTTP_LATENCY, "method" => method, "route" => route)
        .record(elapsed.as_secs_f64());
    response
}

/// One request counted in `orderflow_http_requests_in_flight` from when its
/// head was read until it is answered, or dropped unanswered (a client that
/// went away, a timeout), so the gauge never drifts upwards.
struct InFlight(metrics::Gauge);

impl InFlight {
    fn enter(route: String) -> Self {
        let gauge = metrics::gauge!(metric_names::HTTP_IN_FLIGHT, "route" => route);
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
