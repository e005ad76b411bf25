//! `GET /dead-letters`: an admin sees the order commands the processor gave
//! up on, newest first and paged, while the partition they sat on goes on
//! deciding orders.

mod support;

use std::time::Duration;

use async_nats::jetstream::context::Publish;
use chrono::Utc;
use orderflow_core::command::{OrderCommand, PlaceOrder};
use orderflow_core::dead_letter::MAX_ATTEMPTS;
use orderflow_core::domain::{request_hash, OrderLine, Sku};
use orderflow_core::partition::partition_for;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{problem, TestApp};
use testkit::eventually;
use uuid::Uuid;

const SKU: &str = "DEAD-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_lists_dead_lettered_commands_newest_first_and_the_partition_keeps_deciding() {
    let app = TestApp::start().await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, SKU, 10, 0).await;
    let (customer_id, customer) = app.customer().await;

    // Two commands no processor can decide, queued on the sku's partition
    // the way ingress-api queues orders: bytes that are no command, then an
    // order whose idempotency key holds a NUL byte, which PostgreSQL refuses
    // in text every time.
    let naming = &app.ns.naming;
    let partition = partition_for(&Sku::parse(SKU).unwrap(), app.settings.partitions);
    let js = async_nats::jetstream::new(async_nats::connect(testkit::nats_url()).await.unwrap());
    let garbage_id = Uuid::now_v7();
    js.send_publish(
        naming.order_subject(partition, garbage_id),
        Publish::build().payload("not json".into()),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let items = vec![OrderLine {
        sku: Sku::parse(SKU).unwrap(),
        quantity: 1.try_into().unwrap(),
    }];
    let poison = PlaceOrder {
        order_id: Uuid::now_v7(),
        customer_id,
        request_hash: hex::encode(request_hash(&items)),
        items,
        idempotency_key: Some("nul\u{0}key".into()),
        accepted_at: Utc::now(),
    };
    let poison_subject = naming.order_subject(partition, poison.order_id);
    let poison_seq = js
        .send_publish(
            poison_subject.clone(),
            Publish::build()
                .message_id(poison.order_id.to_string())
                .payload(
                    serde_json::to_vec(&OrderCommand::PlaceOrder(poison.clone()))
                        .unwrap()
                        .into(),
                ),
        )
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;

    // An order placed after them is decided.
    let good = app
        .place(&customer, json!([{"sku": SKU, "quantity": 1}]))
        .await;
    eventually(
        Duration::from_secs(20),
        "the later order decided",
        || async { (app.order(&customer, good).await["status"] == "confirmed").then_some(()) },
    )
    .await;

    let page: Value = eventually(Duration::from_secs(20), "two dead letters", || async {
        let page: Value = app.get(&admin, "/dead-letters").await.json().await.ok()?;
        (page["items"].as_array()?.len() == 2).then_some(page)
    })
    .await;
    assert_eq!(page["next_cursor"], Value::Null);

    // Newest first, one a page.
    let first: Value = app
        .get(&admin, "/dead-letters?limit=1")
        .await
        .json()
        .await
        .unwrap();
    let refused = &first["items"][0];
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    assert_eq!(refused["reason_kind"], "database");
    assert_eq!(refused["attempts"], MAX_ATTEMPTS);
    assert_eq!(refused["subject"], poison_subject.as_str());
    assert_eq!(refused["stream_seq"], poison_seq);
    assert_eq!(refused["partition"], partition);
    assert_eq!(refused["order_id"], poison.order_id.to_string());
    assert!(
        refused["reason"].as_str().unwrap().contains("0x00"),
        "{refused}"
    );
    let payload: OrderCommand = serde_json::from_str(refused["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, OrderCommand::PlaceOrder(poison.clone()));
    let at: chrono::DateTime<Utc> = refused["dead_lettered_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(Utc::now() - at < chrono::Duration::seconds(60));

    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second: Value = app
        .get(&admin, &format!("/dead-letters?limit=1&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    let undecodable = &second["items"][0];
    assert_eq!(undecodable["reason_kind"], "undecodable");
    assert_eq!(undecodable["attempts"], 0);
    assert_eq!(undecodable["payload"], "not json");
    assert_eq!(
        undecodable["order_id"],
        garbage_id.to_string(),
        "read from the subject"
    );
    assert_eq!(second["next_cursor"], Value::Null);

    // The poison order was never decided; nothing else was touched.
    let status = app.order(&customer, poison.order_id).await;
    assert_ne!(status["status"], "confirmed", "{status}");
    assert_eq!(app.stock(SKU).await, (10, 1));

    problem(
        app.get(&customer, "/dead-letters").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.get(&admin, "/dead-letters?cursor=nonsense").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // Documented like every route.
    let document: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let operation = &document["paths"]["/dead-letters"]["get"];
    assert_eq!(operation["security"], json!([{"bearer": []}]));
    for status in ["200", "401", "403", "422", "503"] {
        assert!(operation["responses"].get(status).is_some(), "{status}");
    }
}
