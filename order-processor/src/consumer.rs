//! The JetStream consumer of one partition.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::stream::Stream;
use orderflow_core::naming::Naming;

/// How long JetStream waits for an ack before redelivering. Workers holding a
/// batch through a database outage send progress acks well within it.
pub const ACK_WAIT: Duration = Duration::from_secs(30);

/// Recreates the partition's durable consumer so it delivers from the oldest
/// message still queued.
///
/// The stream is a work queue: it holds exactly the commands not yet acked,
/// in queue order. A new owner starting from the first of them decides the
/// partition in order at once; keeping the old consumer would make it wait
/// out the ack timeout for the dead owner's unacked batch while newer orders
/// went ahead of it, breaking first come, first served.
pub async fn take_over(
    stream: &Stream,
    naming: &Naming,
    partition: u16,
    max_ack_pending: i64,
) -> anyhow::Result<pull::Stream> {
    let name = naming.partition_consumer(partition);
    match stream.delete_consumer(&name).await {
        Ok(_) => {}
        Err(err) if err.to_string().contains("not found") => {}
        Err(err) => return Err(anyhow::anyhow!("delete consumer {name}: {err}")),
    }
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(name.clone()),
            // One filter subject: nats-server 2.9 ignores the plural form.
            filter_subject: naming.partition_filter(partition),
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            deliver_policy: DeliverPolicy::All,
            max_ack_pending,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("create consumer {name}: {e}"))?;
    consumer
        .stream()
        .max_messages_per_batch(max_ack_pending.clamp(1, 4096) as usize)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .with_context(|| format!("pull from consumer {name}"))
}
