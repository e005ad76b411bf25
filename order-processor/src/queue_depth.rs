//! Queue depth and the age of the oldest pending order, per partition.
//!
//! Exported by the replica that owns partition 0, so exactly one replica at a
//! time reports them and dashboards never double count. Depth is what the
//! partition's consumer has not acked yet: pending plus delivered-but-unacked.
//! The ORDERS stream is a work queue, so its oldest message under a
//! partition's subjects is that partition's oldest undecided command.

use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use orderflow_core::metric_names;
use orderflow_core::naming::Naming;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::coordinator::OwnedPartitions;
use crate::gauge_owner::{GaugeOwner, Turn};

/// How often the figures are refreshed.
pub const INTERVAL: Duration = Duration::from_secs(5);

pub async fn run(
    orders: Stream,
    naming: Naming,
    partitions: u16,
    owned: OwnedPartitions,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut owner = GaugeOwner::new(owned);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match owner.turn() {
            Turn::Export => {
                for partition in 0..partitions {
                    measure(&orders, &naming, partition).await;
                }
            }
            Turn::Resign => {
                for partition in 0..partitions {
                    let label = partition.to_string();
                    metrics::gauge!(metric_names::QUEUE_DEPTH, "partition" => label.clone())
                        .set(0.0);
                    metrics::gauge!(metric_names::QUEUE_OLDEST_AGE, "partition" => label).set(0.0);
                }
            }
            Turn::Idle => {}
        }
    }
}

/// One partition's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// Orders not acked yet; `None` when the partition has no consumer yet.
    pub depth: Option<u64>,
    /// Seconds the oldest undecided order has waited; 0 when none waits.
    pub oldest_age_seconds: f64,
}

/// Measures one partition and sets its gauges.
pub async fn measure(orders: &Stream, naming: &Naming, partition: u16) -> Measurement {
    let label = partition.to_string();
    let depth = match orders
        .consumer_info(naming.partition_consumer(partition))
        .await
    {
        Ok(info) => {
            let depth = info.num_pending + info.num_ack_pending as u64;
            metrics::gauge!(metric_names::QUEUE_DEPTH, "partition" => label.clone())
                .set(depth as f64);
            Some(depth)
        }
        // No consumer yet (the partition was never owned): nothing to report.
        Err(err) => {
            debug!(partition, %err, "no consumer info for the queue depth");
            None
        }
    };
    let age = match orders
        .get_next_raw_message_by_subject(naming.partition_filter(partition))
        .await
    {
        Ok(oldest) => {
            let stored = oldest.time.unix_timestamp_nanos() as f64 / 1e9;
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as f64 / 1e9;
            (now - stored).max(0.0)
        }
        // Nothing queued in the partition: no order is waiting.
        Err(_) => 0.0,
    };
    metrics::gauge!(metric_names::QUEUE_OLDEST_AGE, "partition" => label).set(age);
    Measurement {
        depth,
        oldest_age_seconds: age,
    }
}
