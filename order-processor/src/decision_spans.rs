//! The exported span of each command a batch applies, made only while OTLP
//! export is on ([`orderflow_core::otel::enabled`]).
//!
//! Each span's remote parent is the context the command's message carried
//! (the request that queued it), and the span's own context replaces it in
//! the command, so the events the command causes continue the trace under
//! this span. The spans last from the batch's start to its commit.

use std::collections::HashMap;

use orderflow_core::command::OrderCommand;
use orderflow_core::otel;
use tracing::Span;
use uuid::Uuid;

use crate::batch::{BatchReport, QueuedCommand};

/// The open spans of a batch's commands.
#[derive(Default)]
pub struct DecisionSpans {
    /// Placements by order id, so their outcome can be recorded.
    placements: HashMap<Uuid, Span>,
    /// Cancellations and fulfilments.
    settlements: Vec<Span>,
}

/// Opens one span per command and makes its context the one each command
/// passes on.
pub fn open(partition: u16, commands: &mut [QueuedCommand]) -> DecisionSpans {
    let mut spans = DecisionSpans::default();
    for queued in commands.iter_mut() {
        let (name, order_id) = match &queued.command {
            OrderCommand::PlaceOrder(place) => ("order.decide", place.order_id),
            OrderCommand::CancelOrder(action) => ("order.cancel", action.order_id),
            OrderCommand::FulfilOrder(action) => ("order.fulfil", action.order_id),
        };
        let span = tracing::info_span!(
            target: otel::SPAN_TARGET,
            "order",
            otel.name = name,
            order_id = %order_id,
            partition,
            stream_seq = queued.stream_seq,
            request_id = queued.trace.request_id.as_ref().map(|r| r.as_str()),
            outcome = tracing::field::Empty,
        );
        let context = otel::adopt(&span, queued.trace.context.as_ref());
        queued.trace.context = Some(context);
        if matches!(queued.command, OrderCommand::PlaceOrder(_)) {
            spans.placements.insert(order_id, span);
        } else {
            spans.settlements.push(span);
        }
    }
    spans
}

/// Records each decided order's outcome and closes every span, which
/// exports it.
pub fn close(spans: DecisionSpans, report: &BatchReport) {
    if spans.placements.is_empty() && spans.settlements.is_empty() {
        return;
    }
    for (order_id, _, outcome) in &report.decided {
        if let Some(span) = spans.placements.get(order_id) {
            match outcome {
                Ok(()) => span.record("outcome", "confirmed"),
                Err(reason) => span.record("outcome", reason.as_str()),
            };
        }
    }
    drop(spans);
}
