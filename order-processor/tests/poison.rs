//! Poison commands on a partition: one the database refuses every time and
//! one that is not a command at all, queued between good orders. The good
//! orders are all decided in queue order, the poison ones land in the
//! dead-letter stream once each with their reason and attempts, and the
//! partition keeps moving.

mod support;

use std::time::Duration;

use async_nats::jetstream::context::Publish;
use bytes::Bytes;
use chrono::Utc;
use order_processor::Processor;
use orderflow_core::command::{OrderCommand, PlaceOrder};
use orderflow_core::dead_letter::{self, DeadLetter, ReasonKind};
use orderflow_core::domain::{request_hash, OrderLine, Sku};
use support::{assert_invariants, decided, product, Feed};
use testkit::{eventually, TestDatabase, TestNamespace};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SKU: &str = "POISON-A";
const STOCK: i64 = 6;

fn place_order(customer: Uuid, idempotency_key: Option<&str>) -> PlaceOrder {
    let items = vec![OrderLine {
        sku: Sku::parse(SKU).unwrap(),
        quantity: 1.try_into().unwrap(),
    }];
    PlaceOrder {
        order_id: Uuid::now_v7(),
        customer_id: customer,
        request_hash: hex::encode(request_hash(&items)),
        items,
        idempotency_key: idempotency_key.map(str::to_owned),
        accepted_at: Utc::now(),
    }
}

/// Publishes one message and answers its stream sequence.
async fn publish(feed: &Feed, subject: String, id: Uuid, payload: Bytes) -> u64 {
    feed.js
        .send_publish(
            subject,
            Publish::build().message_id(id.to_string()).payload(payload),
        )
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_the_database_always_refuses_is_dead_lettered_once_and_the_orders_after_it_are_decided(
) {
    testkit::init_logging();
    let db = TestDatabase::create().await.unwrap();
    let ns = TestNamespace::new();
    product(&db.pool, SKU, STOCK).await;
    let feed = Feed::new(&db, &ns, 1).await;
    let naming = &ns.naming;

    // Queue order: four good orders, a message that is no command, an order
    // whose idempotency key holds a NUL byte (valid JSON and a valid command,
    // but PostgreSQL refuses NUL in text, SQLSTATE 22021, every time), then
    // five good orders. All queued before the processor starts, so the
    // poison sits inside one batch with good orders on both sides.
    let mut good = Vec::new();
    for _ in 0..4 {
        let order = place_order(feed.customer, None);
        let payload = serde_json::to_vec(&OrderCommand::PlaceOrder(order.clone())).unwrap();
        publish(
            &feed,
            naming.order_subject(0, order.order_id),
            order.order_id,
            payload.into(),
        )
        .await;
        good.push(order.order_id);
    }
    let garbage_id = Uuid::now_v7();
    let garbage_subject = naming.order_subject(0, garbage_id);
    let garbage = Bytes::from_static(b"{\"type\":\"place_order\",\"order_id\":");
    let garbage_seq = publish(&feed, garbage_subject.clone(), garbage_id, garbage.clone()).await;
    let poison = place_order(feed.customer, Some("retry-\u{0}-key"));
    let poison_subject = naming.order_subject(0, poison.order_id);
    let poison_payload =
        Bytes::from(serde_json::to_vec(&OrderCommand::PlaceOrder(poison.clone())).unwrap());
    let poison_seq = publish(
        &feed,
        poison_subject.clone(),
        poison.order_id,
        poison_payload.clone(),
    )
    .await;
    for _ in 0..5 {
        let order = place_order(feed.customer, None);
        let payload = serde_json::to_vec(&OrderCommand::PlaceOrder(order.clone())).unwrap();
        publish(
            &feed,
            naming.order_subject(0, order.order_id),
            order.order_id,
            payload.into(),
        )
        .await;
        good.push(order.order_id);
    }

    let shutdown = CancellationToken::new();
    let settings = testkit::settings(&db, &ns, &[("ORDERFLOW_PARTITIONS", "1")]);
    let processor = Processor::start(settings, shutdown.clone()).await.unwrap();

    let orders_stream = feed.js.get_stream(naming.orders_stream()).await.unwrap();
    let dead_stream = feed
        .js
        .get_stream(naming.dead_orders_stream())
        .await
        .unwrap();
    let expected = good.len() as i64;
    eventually(
        Duration::from_secs(20),
        "the good orders decided and the queue empty",
        || {
            let pool = db.pool.clone();
            let queued = &orders_stream;
            async move {
                let left = queued.get_info().await.ok()?.state.messages;
                (decided(&pool).await == expected && left == 0).then_some(())
            }
        },
    )
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), processor.wait())
        .await
        .expect("the processor stops");

    // Every good order decided once, first come first served across the
    // poison: the first six confirmed, the last three rejected.
    assert_invariants(&db.pool, &good, &[SKU], STOCK).await;
    let poison_row: Option<String> = sqlx::query_scalar("select status from orders where id = $1")
        .bind(poison.order_id)
        .fetch_optional(&db.pool)
        .await
        .unwrap();
    assert_eq!(poison_row, None, "the poison order is not decided");

    // Exactly two dead letters, one per poison command.
    let info = dead_stream.get_info().await.unwrap();
    assert_eq!(info.state.messages, 2, "one dead letter per poison command");
    let mut letters = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let message = dead_stream.get_raw_message(seq).await.unwrap();
        assert_eq!(message.subject.as_str(), naming.dead_order_subject(0));
        let letter = DeadLetter::from_headers(&message.headers).expect("dead-letter headers");
        assert_eq!(
            message
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .map(|v| v.as_str().to_owned()),
            Some(DeadLetter::message_id(
                &naming.orders_stream(),
                letter.stream_seq
            )),
            "the dead letter's id is the original's stream sequence"
        );
        letters.push((letter, message.payload));
    }
    letters.sort_by_key(|(letter, _)| letter.stream_seq);

    let (undecodable, payload) = &letters[0];
    assert_eq!(undecodable.reason_kind, ReasonKind::Undecodable);
    assert_eq!(undecodable.subject, garbage_subject);
    assert_eq!(undecodable.stream_seq, garbage_seq);
    assert_eq!(undecodable.attempts, 0);
    assert!(undecodable.reason.contains("not an order command"));
    assert_eq!(payload, &garbage);

    let (refused, payload) = &letters[1];
    assert_eq!(refused.reason_kind, ReasonKind::Database);
    assert_eq!(refused.subject, poison_subject);
    assert_eq!(refused.stream_seq, poison_seq);
    assert_eq!(refused.attempts, dead_letter::MAX_ATTEMPTS);
    assert!(
        refused.reason.contains("0x00"),
        "the reason names the error: {}",
        refused.reason
    );
    assert_eq!(
        payload, &poison_payload,
        "the original payload, byte for byte"
    );
    let age = Utc::now() - refused.dead_lettered_at;
    assert!(
        age < chrono::Duration::seconds(60),
        "dead-lettered just now"
    );

    // A second dead letter for the same command (a worker that died between
    // storing it and terminating the original) is dropped by its id.
    let again = feed
        .js
        .send_publish(
            naming.dead_order_subject(0),
            Publish::build()
                .headers(refused.to_headers())
                .message_id(DeadLetter::message_id(&naming.orders_stream(), poison_seq))
                .payload(poison_payload.clone()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(again.duplicate, "the same command is dead-lettered once");
    assert_eq!(dead_stream.get_info().await.unwrap().state.messages, 2);
}
