//! Stream, subject and consumer names.
//!
//! Everything lives under an optional namespace so several deployments, or
//! many tests running in parallel, can share one NATS server: JetStream
//! refuses two streams with overlapping subjects, so each namespace gets its
//! own streams and subject prefix.

use uuid::Uuid;

/// Names under one namespace. The empty namespace gives the plain names of
/// the contract: stream `ORDERS` with subjects `orders.p<N>.<order_id>`,
/// stream `EVENTS` with subjects `events.<kind>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    prefix: String,
}

impl Naming {
    /// `namespace` must be empty or `[A-Za-z0-9_-]+`.
    pub fn new(namespace: &str) -> anyhow::Result<Self> {
        let valid = namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        anyhow::ensure!(
            valid,
            "ORDERFLOW_NAMESPACE must be empty or [A-Za-z0-9_-]+, got {namespace:?}"
        );
        Ok(Self {
            prefix: namespace.to_owned(),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.prefix
    }

    fn stream(&self, base: &str) -> String {
        if self.prefix.is_empty() {
            base.to_owned()
        } else {
            format!("{}_{base}", self.prefix)
        }
    }

    fn subject(&self, rest: &str) -> String {
        if self.prefix.is_empty() {
            rest.to_owned()
        } else {
            format!("{}.{rest}", self.prefix)
        }
    }

    pub fn orders_stream(&self) -> String {
        self.stream("ORDERS")
    }

    /// Every subject of the ORDERS stream.
    pub fn orders_subjects(&self) -> String {
        self.subject("orders.>")
    }

    /// One subject per order, so the queued command of a pending order can be
    /// read back by its id (`GET /orders/{id}` while it waits).
    pub fn order_subject(&self, partition: u16, order_id: Uuid) -> String {
        self.subject(&format!("orders.p{partition}.{order_id}"))
    }

    /// The subject of a later command about an order (`cancel`, `fulfil`):
    /// the order's partition, so it queues behind the placement, but not the
    /// placement's own subject, which must keep answering for the order
    /// while it is pending.
    pub fn order_action_subject(&self, partition: u16, order_id: Uuid, action: &str) -> String {
        self.subject(&format!("orders.p{partition}.{order_id}.{action}"))
    }

    /// The filter of one partition's consumer: placements and later commands.
    pub fn partition_filter(&self, partition: u16) -> String {
        self.subject(&format!("orders.p{partition}.>"))
    }

    pub fn partition_consumer(&self, partition: u16) -> String {
        format!("order-processor-p{partition}")
    }

    /// The stream that keeps order commands the processor gave up on.
    pub fn dead_orders_stream(&self) -> String {
        self.stream("DEAD_ORDERS")
    }

    /// Every subject of the dead-letter stream.
    pub fn dead_orders_subjects(&self) -> String {
        self.subject("dead.orders.>")
    }

    /// Where a dead-lettered command of `partition` goes.
    pub fn dead_order_subject(&self, partition: u16) -> String {
        self.subject(&format!("dead.orders.p{partition}"))
    }

    /// The partition of a dead-letter subject under this namespace.
    pub fn dead_order_partition(&self, subject: &str) -> Option<u16> {
        let rest = if self.prefix.is_empty() {
            subject
        } else {
            subject.strip_prefix(&self.prefix)?.strip_prefix('.')?
        };
        rest.strip_prefix("dead.orders.p")?.parse().ok()
    }

    pub fn events_stream(&self) -> String {
        self.stream("EVENTS")
    }

    pub fn events_subjects(&self) -> String {
        self.subject("events.>")
    }

    /// The subject of an event kind such as `order.confirmed`.
    pub fn event_subject(&self, kind: &str) -> String {
        self.subject(&format!("events.{kind}"))
    }

    /// The event kind of a subject under this namespace, if it is one.
    pub fn event_kind<'s>(&self, subject: &'s str) -> Option<&'s str> {
        let rest = if self.prefix.is_empty() {
            subject
        } else {
            subject.strip_prefix(&self.prefix)?.strip_prefix('.')?
        };
        rest.strip_prefix("events.")
    }

    pub fn notifier_consumer(&self) -> String {
        "notifier".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_namespace_gives_the_contract_names() {
        let naming = Naming::new("").unwrap();
        let id = Uuid::nil();
        assert_eq!(naming.orders_stream(), "ORDERS");
        assert_eq!(naming.order_subject(3, id), format!("orders.p3.{id}"));
        assert_eq!(naming.partition_filter(3), "orders.p3.>");
        assert_eq!(
            naming.order_action_subject(3, id, "cancel"),
            format!("orders.p3.{id}.cancel")
        );
        assert_eq!(naming.events_stream(), "EVENTS");
        assert_eq!(naming.event_subject("stock.low"), "events.stock.low");
        assert_eq!(naming.event_kind("events.stock.low"), Some("stock.low"));
        assert_eq!(naming.dead_orders_stream(), "DEAD_ORDERS");
        assert_eq!(naming.dead_order_subject(3), "dead.orders.p3");
        assert_eq!(naming.dead_order_partition("dead.orders.p3"), Some(3));
    }

    #[test]
    fn a_namespace_prefixes_streams_and_subjects() {
        let naming = Naming::new("t42").unwrap();
        assert_eq!(naming.orders_stream(), "t42_ORDERS");
        assert_eq!(naming.orders_subjects(), "t42.orders.>");
        assert_eq!(
            naming.event_subject("order.confirmed"),
            "t42.events.order.confirmed"
        );
        assert_eq!(
            naming.event_kind("t42.events.order.confirmed"),
            Some("order.confirmed")
        );
        assert_eq!(naming.event_kind("events.order.confirmed"), None);
        assert_eq!(naming.dead_orders_stream(), "t42_DEAD_ORDERS");
        assert_eq!(naming.dead_order_subject(5), "t42.dead.orders.p5");
        assert_eq!(naming.dead_order_partition("t42.dead.orders.p5"), Some(5));
        assert_eq!(naming.dead_order_partition("dead.orders.p5"), None);
        assert!(Naming::new("bad.name").is_err());
    }
}
