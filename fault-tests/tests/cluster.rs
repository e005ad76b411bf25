//! The stack over a three-node JetStream cluster, as deploy/k8s runs it:
//! every stream has three replicas, and when the node leading the ORDERS
//! stream is killed with SIGKILL while orders flow, the other two elect a new
//! leader, every request is answered meanwhile (202 or 503, none left
//! waiting), orders keep being accepted, and afterwards no accepted order is
//! lost or decided twice and every invariant holds.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use fault_tests::load::{Answer, Demand, Load};
use fault_tests::storm;
use fault_tests::FaultStack;
use stack_tests::StackOptions;

const NODES: usize = 3;

/// The stream's RAFT group as its leader reports it: the leader's name and
/// how many followers are current.
async fn raft_group(js: &jetstream::Context, stream: &str) -> Option<(String, usize)> {
    let mut stream = js.get_stream(stream).await.ok()?;
    let info = stream.info().await.ok()?;
    assert_eq!(
        info.config.num_replicas, NODES,
        "{}: replicas",
        info.config.name
    );
    let cluster = info.cluster.clone()?;
    let current = cluster.replicas.iter().filter(|p| p.current).count();
    Some((cluster.leader?, current))
}

/// Waits until `load` has had `more` orders accepted beyond `from`.
async fn accepted_beyond(load: &Load, from: usize, more: usize, what: &str) -> usize {
    testkit::eventually(Duration::from_secs(60), what, || async {
        let (_, accepted) = load.progress();
        (accepted >= from + more).then_some(accepted)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_leading_nats_node_loses_no_accepted_order() {
    let mut fs = FaultStack::start_clustered(StackOptions::default(), NODES)
        .await
        .unwrap();
    let client = async_nats::connect(fs.nats.url()).await.unwrap();
    let js = jetstream::new(client);
    let naming = fs.stack.ns.naming.clone();

    // Every stream the services made is replicated on all three nodes.
    for stream in [
        naming.orders_stream(),
        naming.events_stream(),
        naming.dead_orders_stream(),
    ] {
        testkit::eventually(
            Duration::from_secs(30),
            "every stream replicated on every node",
            || async {
                let (_, current) = raft_group(&js, &stream).await?;
                (current == NODES - 1).then_some(())
            },
        )
        .await;
    }

    // Four products with less stock than the orders want, so some are
    // rejected and the oversell checks bite.
    let setup = storm::set_up(&fs, 4, 60, 4).await.unwrap();
    let load = Load::start(
        fs.stack.api_url(),
        Demand {
            customers: setup.customers.clone(),
            skus: setup.fixture.skus.clone(),
            rate: 40,
        },
    );
    let before = accepted_beyond(&load, 0, 60, "orders accepted before the fault").await;

    let (leader, _) = raft_group(&js, &naming.orders_stream())
        .await
        .expect("the ORDERS stream has a leader");
    eprintln!("cluster: killing {leader}, the ORDERS stream's leader, after {before} accepted");
    fs.nats_node(&leader).expect("the leader is a node").kill();

    // The other two elect a new leader and take orders again.
    let during = accepted_beyond(&load, before, 100, "orders accepted with the leader dead").await;
    let (new_leader, _) = raft_group(&js, &naming.orders_stream())
        .await
        .expect("the ORDERS stream has a leader again");
    assert_ne!(new_leader, leader, "the dead node still leads");
    eprintln!("cluster: {new_leader} leads; {during} accepted");

    // The node comes back and catches up; the orders go on meanwhile.
    fs.nats_node(&leader).unwrap().restart().await.unwrap();
    let after = accepted_beyond(&load, during, 60, "orders accepted after the restart").await;
    testkit::eventually(
        Duration::from_secs(30),
        "the restarted node current again",
        || async {
            let (_, current) = raft_group(&js, &naming.orders_stream()).await?;
            (current == NODES - 1).then_some(())
        },
    )
    .await;
    eprintln!("cluster: {leader} is back and current; {after} accepted");

    let record = load.stop().await;
    let mut others: BTreeMap<String, usize> = BTreeMap::new();
    for sent in record.other() {
        if let Answer::Other(reason) = &sent.answer {
            *others.entry(reason.clone()).or_default() += 1;
        }
    }
    eprintln!("cluster: answers other than 202 and 503: {others:?}");
    // While the survivors elect a leader, a publish gets no acknowledgement:
    // ingress-api must still answer (503 within its publish timeout and
    // lookup budget, about 3 s), not leave the client waiting.
    assert!(
        others.is_empty(),
        "requests went unanswered or failed during the election: {others:?}"
    );
    let injected = BTreeMap::from([("kill -9 the ORDERS leader".to_owned(), 1)]);
    let report = storm::check(&fs, &setup, record, injected).await.unwrap();
    let table = report.render();
    eprintln!("{table}");
    assert!(
        report.holds(),
        "LOST {} / DUPLICATED {} or an invariant broke:\n{table}",
        report.lost,
        report.duplicated
    );
}
