//! Counters exported at zero from the start, for every label set this
//! notifier can produce. A series that appears only on its first increment
//! loses that increment to `rate()`, and an alert on dead deliveries would
//! have nothing to evaluate until the first one.

use orderflow_core::metric_names;

use crate::channel::Channels;
use crate::deliveries::Outcome;
use crate::webhooks;

pub fn export(channels: &Channels) {
    for channel in channels.names().chain([webhooks::CHANNEL]) {
        for outcome in Outcome::ALL {
            metrics::counter!(
                metric_names::NOTIFIER_DELIVERIES,
                "channel" => channel,
                "outcome" => outcome.as_str()
            )
            .increment(0);
        }
    }
    metrics::counter!(metric_names::NOTIFIER_DUPLICATES).increment(0);
    metrics::counter!(metric_names::NOTIFIER_DEFERRED, "reason" => "unknown_type").increment(0);
    metrics::counter!(metric_names::POISON_MESSAGES, "stream" => "events").increment(0);
    metrics::gauge!(metric_names::WEBHOOK_BACKLOG).increment(0.0);
    metrics::gauge!(metric_names::WEBHOOK_DEAD_LETTERS).increment(0.0);
}

#[cfg(test)]
mod tests {
    use orderflow_core::naming::Naming;
    use orderflow_core::telemetry;

    use super::*;

    #[test]
    fn every_channel_and_outcome_is_exported_from_the_start() {
        let handle = telemetry::prometheus();
        export(&Channels::standard(&Naming::new("known").unwrap()));
        let text = handle.render();
        for channel in ["log", "webhook"] {
            for outcome in ["delivered", "failed", "dead"] {
                let series = format!(
                    r#"orderflow_notifier_deliveries_total{{channel="{channel}",outcome="{outcome}"}} 0"#
                );
                assert!(text.contains(&series), "{series} missing from\n{text}");
            }
        }
        assert!(text.contains(r#"orderflow_poison_messages_total{stream="events"} 0"#));
        assert!(text.contains("orderflow_webhook_dead_letters 0"), "{text}");
    }
}
