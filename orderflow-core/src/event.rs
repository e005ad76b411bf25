//! Events published on the EVENTS stream, subject `events.<kind>`.
//!
//! Every event carries a unique `event_id`, which is also its JetStream
//! message id: consumers drop an event whose id they have already handled.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{OrderLine, RejectReason};

/// An event with its identity and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// Unique and stable: a republished event keeps its id.
    pub event_id: Uuid,
    /// When the change the event describes committed.
    pub occurred_at: DateTime<Utc>,
    #[serde(flatten)]
    pub event: Event,
}

impl EventEnvelope {
    /// A new event, with a fresh id that every later publication of it
    /// keeps. Ids are UUIDv7, ordered by time, so an index on them (the
    /// notifier's inbox) grows at one end.
    pub fn new(event: Event, occurred_at: DateTime<Utc>) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            occurred_at,
            event,
        }
    }
}

/// What happened. The `type` field doubles as the subject suffix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "order.confirmed")]
    OrderConfirmed(OrderConfirmed),
    #[serde(rename = "order.rejected")]
    OrderRejected(OrderRejected),
    #[serde(rename = "order.cancelled")]
    OrderCancelled(OrderSettled),
    #[serde(rename = "order.fulfilled")]
    OrderFulfilled(OrderSettled),
    #[serde(rename = "stock.changed")]
    StockChanged(StockChanged),
    #[serde(rename = "stock.low")]
    StockLow(StockThresholdCrossed),
    #[serde(rename = "stock.recovered")]
    StockRecovered(StockThresholdCrossed),
}

impl Event {
    /// The kind, which is also the subject suffix: `events.<kind>`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::OrderConfirmed(_) => "order.confirmed",
            Event::OrderRejected(_) => "order.rejected",
            Event::OrderCancelled(_) => "order.cancelled",
            Event::OrderFulfilled(_) => "order.fulfilled",
            Event::StockChanged(_) => "stock.changed",
            Event::StockLow(_) => "stock.low",
            Event::StockRecovered(_) => "stock.recovered",
        }
    }
}

/// Stock was reserved for every line of the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    pub order_id: Uuid,
    /// The owner, so live streams can show customers only their own orders.
    pub customer_id: Uuid,
    pub items: Vec<OrderLine>,
}

/// The order was refused; nothing was reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRejected {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub reason: RejectReason,
    pub items: Vec<OrderLine>,
}

/// A confirmed order was cancelled (its reservation released) or fulfilled
/// (its units shipped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSettled {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub items: Vec<OrderLine>,
}

/// A product's stock totals over all locations after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockChanged {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

/// A product's available stock crossed its low-stock threshold: down through
/// it for `stock.low`, back above it for `stock.recovered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockThresholdCrossed {
    pub sku: String,
    pub available: i64,
    pub threshold: i64,
}

/// Whether `available` counts as low against `threshold`: at or below it.
pub fn is_low(available: i64, threshold: i64) -> bool {
    available <= threshold
}

/// The low-stock event a change from `before` to `after` available units
/// causes, if it crosses the threshold.
pub fn threshold_crossing(sku: &str, before: i64, after: i64, threshold: i64) -> Option<Event> {
    let crossed = StockThresholdCrossed {
        sku: sku.to_owned(),
        available: after,
        threshold,
    };
    match (is_low(before, threshold), is_low(after, threshold)) {
        (false, true) => Some(Event::StockLow(crossed)),
        (true, false) => Some(Event::StockRecovered(crossed)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Sku;

    fn envelope(event: Event) -> serde_json::Value {
        serde_json::to_value(EventEnvelope {
            event_id: Uuid::nil(),
            occurred_at: "2026-01-02T03:04:05Z".parse().unwrap(),
            event,
        })
        .unwrap()
    }

    #[test]
    fn the_order_rejected_json_is_pinned() {
        let json = envelope(Event::OrderRejected(OrderRejected {
            order_id: Uuid::from_u128(7),
            customer_id: Uuid::from_u128(8),
            reason: RejectReason::InsufficientStock,
            items: vec![OrderLine {
                sku: Sku::parse("A").unwrap(),
                quantity: 1.try_into().unwrap(),
            }],
        }));
        assert_eq!(
            json,
            serde_json::json!({
                "event_id": "00000000-0000-0000-0000-000000000000",
                "occurred_at": "2026-01-02T03:04:05Z",
                "type": "order.rejected",
                "order_id": "00000000-0000-0000-0000-000000000007",
                "customer_id": "00000000-0000-0000-0000-000000000008",
                "reason": "insufficient_stock",
                "items": [{"sku": "A", "quantity": 1}]
            })
        );
        let back: EventEnvelope = serde_json::from_value(json).unwrap();
        assert_eq!(back.event.kind(), "order.rejected");
    }

    #[test]
    fn the_stock_low_json_is_pinned() {
        let json = envelope(Event::StockLow(StockThresholdCrossed {
            sku: "A".into(),
            available: 3,
            threshold: 5,
        }));
        assert_eq!(
            json,
            serde_json::json!({
                "event_id": "00000000-0000-0000-0000-000000000000",
                "occurred_at": "2026-01-02T03:04:05Z",
                "type": "stock.low",
                "sku": "A",
                "available": 3,
                "threshold": 5
            })
        );
    }

    #[test]
    fn a_crossing_fires_once_each_way_and_never_within_a_side() {
        assert!(matches!(
            threshold_crossing("A", 6, 5, 5),
            Some(Event::StockLow(_))
        ));
        assert!(threshold_crossing("A", 5, 2, 5).is_none());
        assert!(matches!(
            threshold_crossing("A", 5, 6, 5),
            Some(Event::StockRecovered(_))
        ));
        assert!(threshold_crossing("A", 9, 6, 5).is_none());
    }
}
