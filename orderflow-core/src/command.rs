//! Commands queued on the ORDERS stream, one JSON message per command.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::OrderLine;

/// A command for the order processor. Tagged by `type` so later commands can
/// travel the same serialized path as placements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OrderCommand {
    PlaceOrder(PlaceOrder),
    /// Release a confirmed order's reservation. Queued behind the order's
    /// placement in its partition, so it can never race the decision.
    CancelOrder(OrderAction),
    /// Ship a confirmed order: on_hand and reserved both fall where it was
    /// allocated.
    FulfilOrder(OrderAction),
}

/// A customer's order as ingress-api accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceOrder {
    /// Also the JetStream message id, so a retried publish is dropped by the
    /// stream's duplicate window and a redelivery by the processor's check.
    pub order_id: Uuid,
    /// The user who placed the order and owns it.
    pub customer_id: Uuid,
    /// The lines in the order the client sent them; 1 to 100.
    pub items: Vec<OrderLine>,
    /// The client's `Idempotency-Key`, when it sent one.
    pub idempotency_key: Option<String>,
    /// Hex SHA-256 of the normalised lines, see [`crate::domain::request_hash`].
    pub request_hash: String,
    /// When ingress-api accepted the order; decision latency is measured from it.
    pub accepted_at: DateTime<Utc>,
}

/// A request to move a decided order on: cancel or fulfil it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAction {
    pub order_id: Uuid,
    /// The user who asked, recorded as the actor on the ledger rows.
    pub requested_by: Uuid,
    pub requested_at: DateTime<Utc>,
}

impl OrderCommand {
    pub fn order_id(&self) -> Uuid {
        match self {
            OrderCommand::PlaceOrder(place) => place.order_id,
            OrderCommand::CancelOrder(action) | OrderCommand::FulfilOrder(action) => {
                action.order_id
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Sku;

    #[test]
    fn the_place_order_json_is_pinned() {
        let command = OrderCommand::PlaceOrder(PlaceOrder {
            order_id: Uuid::nil(),
            customer_id: Uuid::from_u128(1),
            items: vec![OrderLine {
                sku: Sku::parse("A-1").unwrap(),
                quantity: 2.try_into().unwrap(),
            }],
            idempotency_key: Some("k".into()),
            request_hash: "ab".into(),
            accepted_at: "2026-01-02T03:04:05Z".parse().unwrap(),
        });
        let json = serde_json::to_value(&command).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "place_order",
                "order_id": "00000000-0000-0000-0000-000000000000",
                "customer_id": "00000000-0000-0000-0000-000000000001",
                "items": [{"sku": "A-1", "quantity": 2}],
                "idempotency_key": "k",
                "request_hash": "ab",
                "accepted_at": "2026-01-02T03:04:05Z"
            })
        );
        let back: OrderCommand = serde_json::from_value(json).unwrap();
        assert_eq!(back, command);
    }

    #[test]
    fn the_cancel_and_fulfil_json_is_pinned() {
        let action = OrderAction {
            order_id: Uuid::nil(),
            requested_by: Uuid::from_u128(2),
            requested_at: "2026-01-02T03:04:05Z".parse().unwrap(),
        };
        let json = serde_json::to_value(OrderCommand::CancelOrder(action.clone())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "cancel_order",
                "order_id": "00000000-0000-0000-0000-000000000000",
                "requested_by": "00000000-0000-0000-0000-000000000002",
                "requested_at": "2026-01-02T03:04:05Z"
            })
        );
        let fulfil = serde_json::to_value(OrderCommand::FulfilOrder(action)).unwrap();
        assert_eq!(fulfil["type"], "fulfil_order");
    }

    #[test]
    fn a_command_with_an_invalid_line_does_not_decode() {
        let raw = r#"{"type":"place_order","order_id":"00000000-0000-0000-0000-000000000000",
            "customer_id":"00000000-0000-0000-0000-000000000001",
            "items":[{"sku":"A","quantity":0}],"idempotency_key":null,
            "request_hash":"","accepted_at":"2026-01-02T03:04:05Z"}"#;
        assert!(serde_json::from_str::<OrderCommand>(raw).is_err());
    }
}
