//! The NATS connection and the JetStream streams orderflow needs, provisioned
//! idempotently at start by whichever service comes up first.

use std::time::Duration;

use anyhow::{bail, Context};
use async_nats::jetstream::{self, stream};

use crate::dead_letter;
use crate::naming::Naming;
use crate::settings::Settings;

/// How long JetStream remembers a message id; a retried publish inside this
/// window is dropped as a duplicate.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long the EVENTS stream keeps events for live streams to resume from.
pub const EVENTS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Stream sizing, from settings.
#[derive(Debug, Clone)]
pub struct StreamLimits {
    /// Most queued orders; beyond it publishes are refused.
    pub orders_max_msgs: i64,
    /// Most bytes of queued orders.
    pub orders_max_bytes: i64,
    /// Most bytes of events kept; the oldest go first.
    pub events_max_bytes: i64,
    /// Replicas of every stream (`ORDERFLOW_STREAM_REPLICAS`).
    pub replicas: usize,
}

impl From<&Settings> for StreamLimits {
    fn from(settings: &Settings) -> Self {
        Self {
            orders_max_msgs: settings.orders_max_msgs,
            orders_max_bytes: settings.orders_max_bytes,
            events_max_bytes: settings.events_max_bytes,
            replicas: settings.stream_replicas,
        }
    }
}

/// Connects to NATS. The client reconnects by itself for ever; the first
/// connection is retried in the background too, so a service can start before
/// the broker and report itself unready until it is there.
///
/// `url` may list several servers of one cluster, comma-separated: the client
/// starts with any that answers and fails over to the others (and to those the
/// cluster tells it about) when its server goes away.
pub async fn connect(url: &str, name: &str) -> anyhow::Result<async_nats::Client> {
    let servers = server_addrs(url)?;
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .request_timeout(Some(Duration::from_secs(5)))
        .connect(servers)
        .await
        .with_context(|| format!("connect to NATS at {url}"))
}

/// The servers of a `NATS_URL`: one URL or several, comma-separated.
pub fn server_addrs(url: &str) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|server| !server.is_empty())
        .map(|server| {
            server
                .parse::<async_nats::ServerAddr>()
                .with_context(|| format!("NATS_URL: {server:?} is not a NATS server URL"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if servers.is_empty() {
        bail!("NATS_URL names no server");
    }
    Ok(servers)
}

/// Creates the ORDERS, EVENTS and DEAD_ORDERS streams if they do not exist.
///
/// ORDERS is a work queue: a message leaves it once the processor acks it, so
/// the stream holds exactly the orders not yet decided. When it is full, new
/// publishes are refused (ingress answers 503) and nothing queued is dropped.
///
/// DEAD_ORDERS keeps the commands the processor gave up on (see
/// [`crate::dead_letter`]) under limits: 30 days or 1 GiB, oldest out first.
pub async fn provision(
    js: &jetstream::Context,
    naming: &Naming,
    limits: &StreamLimits,
) -> anyhow::Result<(stream::Stream, stream::Stream)> {
    let orders = js
        .get_or_create_stream(stream::Config {
            name: naming.orders_stream(),
            subjects: vec![naming.orders_subjects()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::New,
            max_messages: limits.orders_max_msgs,
            max_bytes: limits.orders_max_bytes,
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: limits.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("create stream {}: {e}", naming.orders_stream()))?;
    let events = js
        .get_or_create_stream(stream::Config {
            name: naming.events_stream(),
            subjects: vec![naming.events_subjects()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::Old,
            max_age: EVENTS_MAX_AGE,
            max_bytes: limits.events_max_bytes,
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: limits.replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("create stream {}: {e}", naming.events_stream()))?;
    js.get_or_create_stream(stream::Config {
        name: naming.dead_orders_stream(),
        subjects: vec![naming.dead_orders_subjects()],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::Old,
        max_age: dead_letter::MAX_AGE,
        max_bytes: dead_letter::MAX_BYTES,
        duplicate_window: dead_letter::DUPLICATE_WINDOW,
        num_replicas: limits.replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("create stream {}: {e}", naming.dead_orders_stream()))?;
    Ok((orders, events))
}

/// The stream's next item if the client already holds it, without waiting:
/// `None` when nothing is ready.
///
/// Polled outside tokio's cooperative budget. Every poll of a pull stream
/// spends units of the task's budget, and once it is spent (128 units) every
/// tokio resource answers "not ready" until the task yields. A batch drained
/// item by item within one poll of the task then stopped at about 64
/// messages however many were waiting, and the processor's hot partition
/// committed 64 orders at a time with thousands queued behind them.
pub fn ready_now<S: futures::Stream + Unpin>(stream: &mut S) -> Option<Option<S::Item>> {
    use futures::{FutureExt, StreamExt};
    tokio::task::unconstrained(stream.next()).now_or_never()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_or_a_comma_separated_cluster() {
        let one = server_addrs("nats://127.0.0.1:4222").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].host(), "127.0.0.1");
        let three =
            server_addrs("nats://nats-0:4222, nats://nats-1:4222,nats://nats-2:4223").unwrap();
        let hosts: Vec<(&str, u16)> = three.iter().map(|s| (s.host(), s.port())).collect();
        assert_eq!(
            hosts,
            [("nats-0", 4222), ("nats-1", 4222), ("nats-2", 4223)]
        );
        // A trailing comma names nothing more.
        assert_eq!(server_addrs("nats://a:4222,").unwrap().len(), 1);
    }

    #[test]
    fn a_bad_or_empty_list_is_refused_by_name() {
        let err = server_addrs(" , ").unwrap_err();
        assert!(format!("{err:#}").contains("NATS_URL"), "{err:#}");
        let err = server_addrs("nats://a:4222,http://[::1").unwrap_err();
        assert!(format!("{err:#}").contains("http://[::1"), "{err:#}");
    }
}
