//! What an alert email says: subject, plain-text body and identity.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::Message;
use orderflow_core::event::{Event, EventEnvelope, StockThresholdCrossed};

/// The subject prefix, so people can filter alerts into a folder.
pub const SUBJECT_PREFIX: &str = "[orderflow]";

/// Which crossing an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// `stock.low`: available fell to or below the threshold.
    Low,
    /// `stock.recovered`: available rose back above it.
    Recovered,
}

/// The crossing an event describes, if it is one email is sent for.
pub fn crossing(event: &Event) -> Option<(Crossing, &StockThresholdCrossed)> {
    match event {
        Event::StockLow(crossed) => Some((Crossing::Low, crossed)),
        Event::StockRecovered(crossed) => Some((Crossing::Recovered, crossed)),
        _ => None,
    }
}

/// The `Message-ID` of the alert for `event`: the same for every attempt, so
/// mail systems that deduplicate by it drop a second copy should one ever be
/// sent (by an operator's resend, say).
pub fn message_id(envelope: &EventEnvelope) -> String {
    format!("<{}@orderflow>", envelope.event_id)
}

/// `[orderflow] Low stock: SKU-1 (3 left, threshold 5)`.
pub fn subject(crossing: Crossing, crossed: &StockThresholdCrossed) -> String {
    let StockThresholdCrossed {
        sku,
        available,
        threshold,
    } = crossed;
    match crossing {
        Crossing::Low => {
            format!("{SUBJECT_PREFIX} Low stock: {sku} ({available} left, threshold {threshold})")
        }
        Crossing::Recovered => format!(
            "{SUBJECT_PREFIX} Recovered: {sku} ({available} available, threshold {threshold})"
        ),
    }
}

/// The plain-text body: what happened in a sentence, then the facts.
pub fn body(
    crossing: Crossing,
    crossed: &StockThresholdCrossed,
    envelope: &EventEnvelope,
) -> String {
    let StockThresholdCrossed {
        sku,
        available,
        threshold,
    } = crossed;
    let sentence = match crossing {
        Crossing::Low => format!(
            "Available stock of {sku} fell to {available}, at or below its low-stock threshold of {threshold}."
        ),
        Crossing::Recovered => format!(
            "Available stock of {sku} is back above its low-stock threshold of {threshold}: {available} available."
        ),
    };
    format!(
        "{sentence}\n\
         \n\
         SKU:        {sku}\n\
         Available:  {available}\n\
         Threshold:  {threshold}\n\
         Time:       {time}\n\
         Event id:   {event_id}\n\
         \n\
         You receive this as an orderflow manager or admin. Each crossing of\n\
         the threshold is reported once.\n",
        time = envelope
            .occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        event_id = envelope.event_id,
    )
}

/// The one message for `envelope`, from `from` to every one of `recipients`
/// in `Bcc`. `None` when the event is not an alert.
///
/// Bcc, not one `To` with every address: the addresses stay private, a
/// reply-all cannot turn one alert into a thread to every manager, and it is
/// still one message and one SMTP transaction per event, so its delivery has
/// one outcome. lettre builds the envelope from the `Bcc` and then drops the
/// header, so no recipient sees the others.
pub fn compose(
    envelope: &EventEnvelope,
    from: &Mailbox,
    recipients: Vec<Mailbox>,
) -> Option<Result<Message, lettre::error::Error>> {
    let (crossing, crossed) = crossing(&envelope.event)?;
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject(crossing, crossed))
        .message_id(Some(message_id(envelope)))
        .header(ContentType::TEXT_PLAIN);
    for recipient in recipients {
        builder = builder.bcc(recipient);
    }
    Some(builder.body(body(crossing, crossed, envelope)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn low() -> EventEnvelope {
        EventEnvelope::new(
            Event::StockLow(StockThresholdCrossed {
                sku: "SKU-1".into(),
                available: 3,
                threshold: 5,
            }),
            chrono::Utc::now(),
        )
    }

    #[test]
    fn the_subject_names_the_sku_the_stock_left_and_the_threshold() {
        let Event::StockLow(crossed) = low().event else {
            unreachable!()
        };
        assert_eq!(
            subject(Crossing::Low, &crossed),
            "[orderflow] Low stock: SKU-1 (3 left, threshold 5)"
        );
        assert_eq!(
            subject(Crossing::Recovered, &crossed),
            "[orderflow] Recovered: SKU-1 (3 available, threshold 5)"
        );
    }

    #[test]
    fn the_recipients_are_in_the_envelope_but_not_in_the_headers() {
        let event = low();
        let from: Mailbox = "Orderflow <alerts@example.com>".parse().unwrap();
        let to: Vec<Mailbox> = vec![
            "a@example.com".parse().unwrap(),
            "b@example.com".parse().unwrap(),
        ];
        let message = compose(&event, &from, to).unwrap().unwrap();
        let recipients: Vec<String> = message
            .envelope()
            .to()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(recipients, ["a@example.com", "b@example.com"]);
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(!raw.contains("a@example.com"), "{raw}");
        assert!(
            raw.contains(&format!("Message-ID: <{}@orderflow>", event.event_id)),
            "{raw}"
        );
    }
}
