//! The notifier against a real PostgreSQL and a real JetStream: duplicates,
//! alerts, poison messages and crashes.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use notifier::channel::Channels;
use notifier::Options;
use orderflow_core::metric_names;
use support::{order_confirmed, stock_low, stock_recovered, Harness, Recorder};
use uuid::Uuid;

#[tokio::test]
async fn an_event_published_twice_with_the_same_id_is_recorded_once_and_delivered_once() {
    let h = Harness::new().await;
    // A threshold crossing: it has an effect (the alert), so it goes through
    // the inbox; an order event nobody subscribed to would not.
    let event = stock_low("WIDGET-1", 2, 5);
    let id = event.event_id;
    let first = h.publish(&event, &format!("{id}-first")).await;
    let notifier = h.start(Options::default());
    h.wait_until_handled(id).await;

    // A second copy under another message id, so the stream's duplicate
    // window keeps it and the notifier's inbox is what must drop it.
    let second = h.publish(&event, &format!("{id}-second")).await;
    assert!(second > first);
    assert_eq!(h.stored_messages().await, 2);
    let info = h.wait_until_settled(second).await;
    notifier.stop().await;

    assert_eq!(info.num_redelivered, 0);
    assert_eq!(h.processed(id).await, 1);
    assert!(
        h.deliveries(id).await.is_empty(),
        "the log channel keeps no delivery rows"
    );
}

#[tokio::test]
async fn copies_of_one_event_in_the_same_batch_are_recorded_once_and_delivered_once() {
    let h = Harness::new().await;
    let event = order_confirmed();
    let id = event.event_id;
    let recorder = Recorder::default();
    for copy in 0..3 {
        h.publish(&event, &format!("{id}-{copy}")).await;
    }
    let last = h.publish(&order_confirmed(), "after-the-copies").await;
    // Published before the notifier starts, so they are all waiting and
    // arrive together.
    let notifier = h.start(Options {
        channels: Some(Channels::new().with(recorder.clone())),
        ..Options::default()
    });
    h.wait_until_settled(last).await;
    h.wait_until_delivered(id).await;
    notifier.stop().await;

    assert_eq!(h.processed(id).await, 1);
    assert_eq!(
        h.deliveries(id).await,
        vec![("recorder".to_owned(), "delivered".to_owned())]
    );
    assert_eq!(recorder.calls().iter().filter(|c| **c == id).count(), 1);
}

#[tokio::test]
async fn a_stock_low_opens_one_alert_a_second_low_while_active_opens_none_and_recovered_resolves_it(
) {
    let h = Harness::new().await;
    let product_id = h.insert_product("WIDGET-7", 5).await;
    let notifier = h.start(Options::default());

    let low = stock_low("WIDGET-7", 4, 5);
    h.publish(&low, &low.event_id.to_string()).await;
    let second_low = stock_low("WIDGET-7", 2, 5);
    let seq = h
        .publish(&second_low, &second_low.event_id.to_string())
        .await;
    h.wait_until_settled(seq).await;

    let alerts: Vec<(String, Uuid, i64)> = sqlx::query_as(
        "select state, raised_event_id, available from stock_alerts where product_id = $1",
    )
    .bind(product_id)
    .fetch_all(&h.db.pool)
    .await
    .unwrap();
    assert_eq!(alerts, vec![("active".to_owned(), low.event_id, 4)]);
    assert_eq!(h.processed(second_low.event_id).await, 1);

    let recovered = stock_recovered("WIDGET-7", 9, 5);
    let seq = h.publish(&recovered, &recovered.event_id.to_string()).await;
    h.wait_until_settled(seq).await;

    let alerts: Vec<(String, Uuid, Option<Uuid>, bool)> = sqlx::query_as(
        "select state, raised_event_id, resolved_event_id, resolved_at is not null
         from stock_alerts where product_id = $1",
    )
    .bind(product_id)
    .fetch_all(&h.db.pool)
    .await
    .unwrap();
    assert_eq!(
        alerts,
        vec![(
            "resolved".to_owned(),
            low.event_id,
            Some(recovered.event_id),
            true
        )]
    );

    // Recovery re-arms the alert: the next crossing opens a new one.
    let low_again = stock_low("WIDGET-7", 1, 5);
    let seq = h.publish(&low_again, &low_again.event_id.to_string()).await;
    h.wait_until_settled(seq).await;
    notifier.stop().await;

    let states: Vec<(String, Uuid)> = sqlx::query_as(
        "select state, raised_event_id from stock_alerts where product_id = $1 order by id",
    )
    .bind(product_id)
    .fetch_all(&h.db.pool)
    .await
    .unwrap();
    assert_eq!(
        states,
        vec![
            ("resolved".to_owned(), low.event_id),
            ("active".to_owned(), low_again.event_id)
        ]
    );
}

#[tokio::test]
async fn an_undecodable_message_is_terminated_and_does_not_block_the_events_after_it() {
    let h = Harness::new().await;
    let poison_subject = h.ns.naming.event_subject("order.confirmed");
    let poison = h
        .publish_raw(
            &poison_subject,
            b"{\"not\": \"an event\"".to_vec(),
            "poison",
        )
        .await;
    // With effects, so it is recorded in the inbox and can be waited for.
    let event = stock_low("WIDGET-1", 2, 5);
    let after = h.publish(&event, &event.event_id.to_string()).await;
    assert!(after > poison);

    let notifier = h.start(Options::default());
    h.wait_until_handled(event.event_id).await;
    let info = h.wait_until_settled(after).await;
    notifier.stop().await;

    // Settled without a redelivery: terminated, neither acked as handled
    // nor left to come back after the ack wait.
    assert_eq!(info.num_redelivered, 0);
    let recorded: i64 = sqlx::query_scalar("select count(*) from processed_events")
        .fetch_one(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(recorded, 1, "only the valid event is recorded");
    let metrics = orderflow_core::telemetry::prometheus().render();
    let counted = metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                r#"{}{{stream="events"}}"#,
                metric_names::POISON_MESSAGES
            ))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(
        counted,
        Some(1.0),
        "the poison message is counted:\n{metrics}"
    );
}

#[tokio::test]
async fn an_event_of_a_type_from_a_newer_producer_waits_instead_of_being_terminated() {
    let h = Harness::new().await;
    let newer = format!(
        r#"{{"event_id":"{}","occurred_at":"2026-01-01T00:00:00Z","type":"order.teleported"}}"#,
        Uuid::now_v7()
    );
    h.publish_raw(
        &h.ns.naming.event_subject("order.teleported"),
        newer.into_bytes(),
        "newer",
    )
    .await;
    let event = stock_low("WIDGET-1", 2, 5);
    h.publish(&event, &event.event_id.to_string()).await;

    let notifier = h.start(Options::default());
    h.wait_until_handled(event.event_id).await;
    notifier.stop().await;

    // The known event went through; the newer one is still unsettled on the
    // consumer, waiting for a notifier that knows its type.
    let client = async_nats::connect(testkit::nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_stream(h.ns.naming.events_stream())
        .await
        .unwrap()
        .get_consumer(&h.ns.naming.notifier_consumer())
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(
        info.num_ack_pending + info.num_pending as usize,
        1,
        "the newer event is neither acked nor terminated: {info:?}"
    );
}

#[tokio::test]
async fn the_notifier_killed_after_handling_some_events_and_started_again_handles_each_event_once_and_all_of_them(
) {
    let h = Harness::new().await;
    let before: Vec<_> = (0..200).map(|_| order_confirmed()).collect();
    for event in &before {
        h.publish(event, &event.event_id.to_string()).await;
    }

    // The first notifier hangs while delivering the 150th event: its batch is
    // committed and acked (or the acks are still in the client's buffer), and
    // the later events wait behind it. Then it is killed.
    let stall_at = before[149].event_id;
    let recorder = Recorder {
        stall_at: Some(stall_at),
        ..Recorder::default()
    };
    // A short ack wait so messages the dead notifier held come back quickly.
    let options = |recorder: &Recorder| Options {
        channels: Some(Channels::new().with(recorder.clone())),
        ack_wait: Duration::from_secs(2),
        ..Options::default()
    };
    let first = h.start(options(&recorder));
    testkit::eventually(
        support::WAIT,
        "the first notifier to reach the stalling event",
        || async { recorder.calls().contains(&stall_at).then_some(()) },
    )
    .await;
    first.kill().await;
    let calls_before_restart = recorder.calls().len();

    let after: Vec<_> = (0..100).map(|_| order_confirmed()).collect();
    let mut last = 0;
    for event in &after {
        last = h.publish(event, &event.event_id.to_string()).await;
    }
    let second = h.start(options(&Recorder {
        stall_at: None,
        ..recorder.clone()
    }));
    h.wait_until_settled(last).await;
    for event in &after {
        h.wait_until_delivered(event.event_id).await;
    }
    second.stop().await;

    // Every event recorded exactly once.
    let all: HashSet<Uuid> = before.iter().chain(&after).map(|e| e.event_id).collect();
    let processed: Vec<Uuid> = sqlx::query_scalar("select event_id from processed_events")
        .fetch_all(&h.db.pool)
        .await
        .unwrap();
    assert_eq!(processed.len(), all.len());
    assert_eq!(processed.into_iter().collect::<HashSet<_>>(), all);

    // Every event delivered at most once, across both notifiers.
    let calls = recorder.calls();
    let mut per_event: HashMap<Uuid, usize> = HashMap::new();
    for id in &calls {
        *per_event.entry(*id).or_default() += 1;
    }
    assert!(
        per_event.values().all(|n| *n == 1),
        "an event was delivered twice"
    );
    assert!(
        calls.len() > calls_before_restart,
        "the second notifier delivered events"
    );

    // One delivery row per event. Delivered rows were delivered once; the
    // rows left pending are the batch the first notifier died in, which the
    // retry worker (not yet built) will pick up.
    let rows: Vec<(Uuid, String)> =
        sqlx::query_as("select event_id, outcome from notification_deliveries")
            .fetch_all(&h.db.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), all.len());
    let mut pending = 0;
    for (id, outcome) in &rows {
        match outcome.as_str() {
            "delivered" => assert_eq!(per_event.get(id), Some(&1)),
            "pending" => pending += 1,
            other => panic!("unexpected outcome {other} for {id}"),
        }
    }
    assert!(
        rows.iter()
            .any(|(id, outcome)| *id == stall_at && outcome == "pending"),
        "the delivery cut short by the crash stays visible as pending"
    );
    assert!(pending <= notifier::consumer::BATCH_MAX);
}
