//! Delivery channels: where a notification about an event goes.
//!
//! A channel says which events it wants and delivers one event at a time. The
//! [`Channels`] registry is the one place the notifier asks "who gets this
//! event?", so webhooks and email plug in later by registering a channel, with
//! no change to the inbox, the batch handler or the bookkeeping of outcomes.

use std::sync::Arc;

use futures::future::BoxFuture;
use orderflow_core::event::{Event, EventEnvelope};
use orderflow_core::naming::Naming;

/// Why a delivery failed. The variants separate failures worth retrying from
/// those that are not, so the retry worker that comes with webhooks can tell
/// them apart; both are recorded as outcome `failed` with the message as detail.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The destination could not be reached or answered with a temporary
    /// error; the same delivery may succeed later.
    #[error("temporarily unavailable: {0}")]
    Transient(String),
    /// The destination refused the notification; retrying cannot help.
    #[error("refused: {0}")]
    Permanent(String),
}

/// One way of telling someone about an event.
///
/// `deliver` returns a boxed future rather than being an `async fn`: the
/// registry holds different channels side by side as `Arc<dyn Channel>`, and an
/// `async fn` in a trait makes the trait unusable as a trait object. Boxing
/// keeps it object-safe without the `async-trait` macro (not a dependency of
/// this workspace); one allocation per delivery is nothing next to a webhook's
/// round trip.
pub trait Channel: Send + Sync + 'static {
    /// The channel's stable name, stored in `notification_deliveries.channel`
    /// and used as the `channel` metric label. Unique within a registry.
    fn name(&self) -> &'static str;

    /// Whether this channel delivers `event` at all. Decided before the
    /// transaction commits, so the planned deliveries are recorded with it.
    fn wants(&self, event: &EventEnvelope) -> bool;

    /// Whether each delivery is kept as a row in `notification_deliveries`,
    /// written before it is attempted, so a failure is retried and one cut
    /// short by a crash is picked up again. True unless the channel cannot
    /// fail and loses nothing worth retrying, as the log.
    fn tracked(&self) -> bool {
        true
    }

    /// Delivers one event. Called at most once per event and channel by the
    /// notifier, after the event was recorded as handled.
    fn deliver<'a>(&'a self, event: &'a EventEnvelope) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// The channels a notifier delivers through, in registration order.
#[derive(Clone, Default)]
pub struct Channels {
    /// Shared so a registry can be cloned into tests and restarted services.
    channels: Vec<Arc<dyn Channel>>,
}

impl Channels {
    /// An empty registry: events are still recorded, nothing is delivered.
    pub fn new() -> Self {
        Self::default()
    }

    /// The channels a production notifier runs with today: only [`LogChannel`].
    pub fn standard(naming: &Naming) -> Self {
        Self::new().with(LogChannel::new(naming.clone()))
    }

    /// Adds a channel.
    ///
    /// # Panics
    ///
    /// When a channel of the same name is already registered: the name is the
    /// key of its delivery rows, so two channels sharing it would overwrite
    /// each other's outcomes. That is a wiring mistake, caught at start.
    pub fn with(mut self, channel: impl Channel) -> Self {
        assert!(
            self.get(channel.name()).is_none(),
            "a channel named {:?} is already registered",
            channel.name()
        );
        self.channels.push(Arc::new(channel));
        self
    }

    /// The channel called `name`, if registered.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Channel>> {
        self.channels.iter().find(|c| c.name() == name)
    }

    /// The names of the registered channels.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.channels.iter().map(|c| c.name())
    }

    /// The channels that want `event`.
    pub fn wanting<'a>(
        &'a self,
        event: &'a EventEnvelope,
    ) -> impl Iterator<Item = &'a Arc<dyn Channel>> + 'a {
        self.channels.iter().filter(move |c| c.wants(event))
    }
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.channels.iter().map(|c| c.name()))
            .finish()
    }
}

/// Writes one structured log line per event: the simplest real channel, and
/// the audit trail operators grep until webhooks and email arrive.
#[derive(Debug, Clone)]
pub struct LogChannel {
    /// To log the subject the event travelled on, namespace included.
    naming: Naming,
}

impl LogChannel {
    pub fn new(naming: Naming) -> Self {
        Self { naming }
    }
}

impl Channel for LogChannel {
    fn name(&self) -> &'static str {
        "log"
    }

    /// Everything except `stock.changed`: that one fires on every order and
    /// feeds live dashboards, not people; logging each would drown the rest.
    fn wants(&self, event: &EventEnvelope) -> bool {
        !matches!(event.event, Event::StockChanged(_))
    }

    /// A log line cannot fail, and a copy of every event in the database
    /// only to mark it logged cost two writes per order (a quarter of the
    /// notifier's database time under load). The line is written after the
    /// batch commits; a crash in between loses it, the event itself is in
    /// the inbox and the stream.
    fn tracked(&self) -> bool {
        false
    }

    fn deliver<'a>(&'a self, event: &'a EventEnvelope) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let kind = event.event.kind();
            let (order_id, sku) = subject_of(&event.event);
            tracing::info!(
                target: "notifier::delivery",
                event_id = %event.event_id,
                event_type = kind,
                subject = %self.naming.event_subject(kind),
                order_id = order_id.map(tracing::field::display),
                sku,
                occurred_at = %event.occurred_at,
                "event delivered"
            );
            Ok(())
        })
    }
}

/// What an event is about: its order or its product.
fn subject_of(event: &Event) -> (Option<&uuid::Uuid>, Option<&str>) {
    match event {
        Event::OrderConfirmed(e) => (Some(&e.order_id), None),
        Event::OrderRejected(e) => (Some(&e.order_id), None),
        Event::OrderCancelled(e) | Event::OrderFulfilled(e) => (Some(&e.order_id), None),
        Event::StockChanged(e) => (None, Some(&e.sku)),
        Event::StockLow(e) | Event::StockRecovered(e) => (None, Some(&e.sku)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_core::event::{StockChanged, StockThresholdCrossed};

    fn envelope(event: Event) -> EventEnvelope {
        EventEnvelope::new(event, chrono::Utc::now())
    }

    #[test]
    fn the_log_channel_wants_alerts_but_not_every_stock_change() {
        let channels = Channels::standard(&Naming::new("").unwrap());
        let low = envelope(Event::StockLow(StockThresholdCrossed {
            sku: "A".into(),
            available: 1,
            threshold: 5,
        }));
        let changed = envelope(Event::StockChanged(StockChanged {
            sku: "A".into(),
            on_hand: 1,
            reserved: 0,
            available: 1,
        }));
        assert_eq!(channels.wanting(&low).count(), 1);
        assert_eq!(channels.wanting(&changed).count(), 0);
    }

    #[test]
    #[should_panic(expected = "already registered")]
    fn two_channels_with_one_name_are_refused() {
        let naming = Naming::new("").unwrap();
        let _ = Channels::standard(&naming).with(LogChannel::new(naming.clone()));
    }
}
