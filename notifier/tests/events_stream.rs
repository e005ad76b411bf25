//! The EVENTS stream keeps at most `ORDERFLOW_EVENTS_MAX_BYTES`: past it the
//! oldest events go and new ones are still taken, so a week of events at a
//! flash sale's rate cannot fill the broker's disk.

use async_nats::jetstream::{self, context::Publish};
use orderflow_core::broker::{self, StreamLimits};
use testkit::TestNamespace;

const LIMIT: i64 = 64 * 1024;
const EVENTS: u64 = 300;

#[tokio::test]
async fn past_its_size_limit_the_events_stream_drops_the_oldest_and_keeps_taking_new_ones() {
    let ns = TestNamespace::new();
    let client = async_nats::connect(testkit::nats_url())
        .await
        .expect("connect to NATS");
    let js = jetstream::new(client);
    broker::provision(
        &js,
        &ns.naming,
        &StreamLimits {
            orders_max_msgs: 1_000,
            orders_max_bytes: 1 << 20,
            events_max_bytes: LIMIT,
            replicas: 1,
        },
    )
    .await
    .expect("provision the streams");

    // 300 events of 1 KiB: several times the limit.
    let body = vec![b'x'; 1024];
    for n in 0..EVENTS {
        js.send_publish(
            ns.naming.event_subject("stock.changed"),
            Publish::build()
                .message_id(format!("event-{n}"))
                .payload(body.clone().into()),
        )
        .await
        .expect("publish")
        .await
        .expect("every event is taken, none refused");
    }

    let mut stream = js
        .get_stream(ns.naming.events_stream())
        .await
        .expect("the EVENTS stream");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.config.max_bytes, LIMIT);
    assert!(
        info.state.bytes <= LIMIT as u64,
        "{} bytes kept, over the limit of {LIMIT}",
        info.state.bytes
    );
    assert_eq!(info.state.last_sequence, EVENTS, "the newest event is kept");
    assert!(
        info.state.first_sequence > 1,
        "the oldest events went first (first sequence {})",
        info.state.first_sequence
    );
}
