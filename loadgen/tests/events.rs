//! The decision watch sees the decision events of its own namespace, and
//! only those.

use std::time::Duration;

use loadgen::events::DecisionWatch;
use testkit::{nats_url, TestNamespace};
use uuid::Uuid;

#[tokio::test]
async fn decision_events_are_timed_as_they_arrive_and_other_namespaces_ignored() {
    let ns = TestNamespace::new();
    let other = TestNamespace::new();
    let watch = DecisionWatch::start(&nats_url(), &ns.namespace)
        .await
        .unwrap();
    let client = async_nats::connect(nats_url()).await.unwrap();
    let (confirmed, rejected, elsewhere) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let publish = |subject: String, id: Uuid| {
        let client = client.clone();
        async move {
            let body = format!(
                r#"{{"event_id":"{}","type":"x","order_id":"{id}"}}"#,
                Uuid::new_v4()
            );
            client.publish(subject, body.into()).await.unwrap();
        }
    };
    publish(ns.naming.event_subject("order.confirmed"), confirmed).await;
    publish(ns.naming.event_subject("order.rejected"), rejected).await;
    publish(other.naming.event_subject("order.confirmed"), elsewhere).await;
    publish(ns.naming.event_subject("stock.changed"), elsewhere).await;
    client.flush().await.unwrap();

    let seen = watch
        .finish(&[confirmed, rejected], Duration::from_secs(10))
        .await;
    assert!(seen.contains_key(&confirmed));
    assert!(seen.contains_key(&rejected));
    assert!(!seen.contains_key(&elsewhere));
}
