//! Counters exported at zero from the start, for every label set the
//! processor can produce. A series that appears only on its first increment
//! loses that increment to `rate()` and leaves alert expressions with
//! nothing to evaluate until something goes wrong.

use orderflow_core::dead_letter::ReasonKind;
use orderflow_core::domain::RejectReason;
use orderflow_core::metric_names;

pub fn export() {
    metrics::counter!(metric_names::ORDERS_DECIDED, "outcome" => "confirmed", "reason" => "")
        .increment(0);
    for reason in RejectReason::ALL {
        metrics::counter!(
            metric_names::ORDERS_DECIDED,
            "outcome" => "rejected",
            "reason" => reason.as_str()
        )
        .increment(0);
    }
    for outcome in ["cancelled", "fulfilled"] {
        metrics::counter!(metric_names::ORDERS_SETTLED, "outcome" => outcome).increment(0);
    }
    metrics::counter!(metric_names::POISON_MESSAGES, "stream" => "orders").increment(0);
    for reason in [ReasonKind::Undecodable, ReasonKind::Database] {
        metrics::counter!(metric_names::DEAD_LETTERS, "reason" => reason.as_str()).increment(0);
    }
    metrics::counter!(metric_names::OUTBOX_PUBLISHED).increment(0);
    metrics::gauge!(metric_names::OUTBOX_BACKLOG).increment(0.0);
}
