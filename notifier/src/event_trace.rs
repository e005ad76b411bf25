//! Each event's trace in the notifier: read from the message's headers,
//! continued by a span per event while OTLP export is on, written to the
//! batch's log line, and kept with webhook deliveries so their requests carry
//! a `traceparent` in the same trace.

use std::time::Duration;

use orderflow_core::event::{Event, EventEnvelope};
use orderflow_core::otel;
use orderflow_core::trace_context::{Aligned, MessageTrace};
use tracing::Span;
use uuid::Uuid;

use crate::handler::BatchReport;

/// The order an event is about, if it is about one.
pub fn order_id(event: &Event) -> Option<Uuid> {
    match event {
        Event::OrderConfirmed(e) => Some(e.order_id),
        Event::OrderRejected(e) => Some(e.order_id),
        Event::OrderCancelled(e) | Event::OrderFulfilled(e) => Some(e.order_id),
        Event::StockChanged(_) | Event::StockLow(_) | Event::StockRecovered(_) => None,
    }
}

/// Opens the span of handling `envelope` (only while spans are exported),
/// its remote parent being the context the message carried, and makes the
/// span's context the one `trace` passes on. Events that carried no context
/// get no span.
pub fn open_span(envelope: &EventEnvelope, trace: &mut MessageTrace) -> Option<Span> {
    if !otel::enabled() {
        return None;
    }
    let parent = trace.context?;
    let span = tracing::info_span!(
        target: otel::SPAN_TARGET,
        "event",
        otel.name = "event.handle",
        otel.kind = "consumer",
        event_id = %envelope.event_id,
        event_type = envelope.event.kind(),
        order_id = order_id(&envelope.event).map(tracing::field::display),
        request_id = trace.request_id.as_ref().map(|r| r.as_str()),
    );
    trace.context = Some(otel::adopt(&span, Some(&parent)));
    Some(span)
}

/// The context a webhook request carries: a child of the one stored with the
/// delivery (the span of sending it, while spans are exported; the span is
/// returned to be kept open for the request).
pub fn webhook_context(stored: Option<&str>, event_id: Uuid) -> (Option<String>, Option<Span>) {
    let Some(parent) =
        stored.and_then(|t| orderflow_core::trace_context::TraceContext::parse(t).ok())
    else {
        return (None, None);
    };
    if otel::enabled() {
        let span = tracing::info_span!(
            target: otel::SPAN_TARGET,
            "webhook",
            otel.name = "webhook.send",
            otel.kind = "client",
            event_id = %event_id,
        );
        let context = otel::adopt(&span, Some(&parent));
        (Some(context.to_string()), Some(span))
    } else {
        (Some(parent.child().to_string()), None)
    }
}

/// The batch's one log line: its counts and duration, and per event its id,
/// order id, trace id and request id (aligned lists, `-` where missing).
pub fn log_batch<'a>(
    events: impl Iterator<Item = (&'a EventEnvelope, &'a MessageTrace)>,
    report: &BatchReport,
    duration: Duration,
) {
    let mut event_ids = Vec::new();
    let mut order_ids = Vec::new();
    let mut trace_ids = Vec::new();
    let mut request_ids = Vec::new();
    for (envelope, trace) in events {
        event_ids.push(Some(envelope.event_id));
        order_ids.push(order_id(&envelope.event));
        trace_ids.push(trace.trace_id());
        request_ids.push(trace.request_id.clone());
    }
    tracing::info!(
        batch_size = event_ids.len(),
        new = report.new,
        duplicates = report.duplicates,
        poison = report.poison,
        delivered = report.delivered,
        failed = report.failed,
        duration_ms = duration.as_secs_f64() * 1000.0,
        event_ids = %Aligned(&event_ids),
        order_ids = %Aligned(&order_ids),
        trace_ids = %Aligned(&trace_ids),
        request_ids = %Aligned(&request_ids),
        "events handled"
    );
}
