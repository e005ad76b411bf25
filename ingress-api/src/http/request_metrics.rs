//! Counts and times every request by route template, method and status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use orderflow_core::metric_names;

pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // The route template, not the path, so ids do not explode the label set.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(metric_names::HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(metric_names::HTTP_LATENCY, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    if response.status().is_server_error() {
        tracing::warn!(status = response.status().as_u16(), "request failed");
    }
    response
}
