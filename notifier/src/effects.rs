//! Which events have an effect the inbox must make happen once.
//!
//! Most events under load are order decisions that nobody acts on: no
//! webhook endpoint asked for them, they cross no stock threshold, and no
//! tracked channel wants them; only the log writes a line. Recording such
//! an event in the inbox, and serializing it for a webhook statement that
//! matches no endpoint, was most of the notifier's database and CPU time
//! while protecting nothing: an event without effects has nothing to dedup.
//!
//! An event has an effect when any of these holds:
//! - `alerts::apply` acts on it (`stock.low`, `stock.recovered`);
//! - a tracked channel wants it (its delivery is kept as a row);
//! - an active webhook endpoint wants its type (or `'*'`).
//!
//! The answer is taken afresh for each batch, so it can change between two
//! deliveries of one event: recorded once with effects, then redelivered
//! after its only endpoint went away, it is handled as an event without
//! effects (logged again, nothing else); the other way round it is recorded
//! and enqueued on the redelivery. Neither repeats an effect.

use std::collections::HashSet;

use orderflow_core::event::EventEnvelope;
use sqlx::PgPool;

use crate::alerts;
use crate::channel::Channels;

/// The event types active webhook endpoints want, as read once per batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookInterest {
    /// Some active endpoint wants every event type (`'*'`).
    all: bool,
    /// The event types some active endpoint names.
    types: HashSet<String>,
}

impl WebhookInterest {
    /// Built from the `events` arrays' elements of the active endpoints.
    pub fn from_types<S: Into<String>>(types: impl IntoIterator<Item = S>) -> Self {
        let mut interest = Self::default();
        for t in types {
            let t = t.into();
            if t == "*" {
                interest.all = true;
            } else {
                interest.types.insert(t);
            }
        }
        interest
    }

    /// Whether some active endpoint wants events of type `kind`: the same
    /// test the enqueue statement's join makes.
    pub fn wants(&self, kind: &str) -> bool {
        self.all || self.types.contains(kind)
    }

    /// What the active endpoints want right now. One small query: the
    /// distinct types over a table of a handful of rows.
    ///
    /// Read from the pool, in its own snapshot, outside the batch
    /// transaction, so a batch without effects opens none. The race is the
    /// one there always was: the enqueue statement also read `webhooks` in
    /// its own statement snapshot, so an endpoint registered (or activated)
    /// while a batch is in flight may miss that batch's events either way;
    /// the window is now from this read to the enqueue instead of the
    /// statement alone. An endpoint deactivated in between costs at most an
    /// inbox row for an event that then gets no delivery: the enqueue keeps
    /// its own `w.active` test.
    pub async fn read(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let types: Vec<String> =
            sqlx::query_scalar("select distinct unnest(events) from webhooks where active")
                .fetch_all(pool)
                .await?;
        Ok(Self::from_types(types))
    }
}

/// Whether handling `envelope` changes anything beyond a log line: whether
/// it must go through the inbox and the batch transaction.
pub fn has_effect(
    envelope: &EventEnvelope,
    channels: &Channels,
    webhooks: &WebhookInterest,
) -> bool {
    alerts::acts_on(&envelope.event)
        || channels.wanting(envelope).any(|c| c.tracked())
        || webhooks.wants(envelope.event.kind())
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_core::event::{Event, OrderConfirmed, StockThresholdCrossed};
    use orderflow_core::naming::Naming;
    use uuid::Uuid;

    fn envelope(event: Event) -> EventEnvelope {
        EventEnvelope::new(event, chrono::Utc::now())
    }

    fn confirmed() -> EventEnvelope {
        envelope(Event::OrderConfirmed(OrderConfirmed {
            order_id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            items: Vec::new(),
        }))
    }

    #[test]
    fn an_order_event_only_logged_has_no_effect_unless_a_webhook_wants_it() {
        let channels = Channels::standard(&Naming::new("").unwrap());
        let event = confirmed();
        assert!(!has_effect(&event, &channels, &WebhookInterest::default()));
        let other = WebhookInterest::from_types(["order.rejected"]);
        assert!(!has_effect(&event, &channels, &other));
        let wanted = WebhookInterest::from_types(["order.rejected", "order.confirmed"]);
        assert!(has_effect(&event, &channels, &wanted));
        assert!(has_effect(
            &event,
            &channels,
            &WebhookInterest::from_types(["*"])
        ));
    }

    #[test]
    fn a_threshold_crossing_always_has_an_effect() {
        let low = envelope(Event::StockLow(StockThresholdCrossed {
            sku: "A".into(),
            available: 1,
            threshold: 5,
        }));
        assert!(has_effect(
            &low,
            &Channels::new(),
            &WebhookInterest::default()
        ));
    }
}
