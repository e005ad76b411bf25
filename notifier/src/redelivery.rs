//! The retry worker of channel deliveries: picks up deliveries that failed
//! for now and are due again, and those left `pending` by a crash between the
//! batch commit and their first attempt, and tries them again through their
//! channel. Runs beside the consumer; several notifier replicas share the
//! work through leases.

use tokio_util::sync::CancellationToken;

use crate::channel::Channels;
use crate::deliveries::{self, RetryPolicy};
use crate::handler::{deliver_one, DELIVERY_TIMEOUT};

/// Most deliveries one round leases.
const ROUND: i64 = 50;

pub async fn run(
    pool: sqlx::PgPool,
    channels: Channels,
    retries: RetryPolicy,
    shutdown: &CancellationToken,
) {
    // A lease outlasts any attempt, so no other replica takes a delivery
    // while this one is still trying it.
    let lease = retries.orphan_grace.max(DELIVERY_TIMEOUT * 2);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(retries.poll) => {}
        }
        let due = match deliveries::lease_due(&pool, ROUND, lease).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(%err, "cannot read due deliveries; will retry");
                continue;
            }
        };
        let mut attempts = Vec::with_capacity(due.len());
        for delivery in &due {
            match channels.get(&delivery.channel) {
                Some(channel) => attempts.push(
                    deliver_one(
                        &delivery.event,
                        channel.clone(),
                        delivery.attempts,
                        &retries,
                    )
                    .await,
                ),
                // A channel switched off since (email without an SMTP
                // host): the row waits, leased, for a notifier that has it.
                None => {
                    tracing::debug!(channel = %delivery.channel, "delivery for a channel not configured here")
                }
            }
        }
        if let Err(err) = deliveries::record_outcomes(&pool, &attempts).await {
            tracing::warn!(%err, attempts = attempts.len(), "could not record retried deliveries");
        }
    }
}
