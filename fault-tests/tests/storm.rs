//! Storms: orders flow while processes are crashed and links cut, slowed
//! and stalled; afterwards no accepted order is lost or decided twice and
//! every invariant holds.
//!
//! The short storm runs in the ordinary suite: every fault kind once. The
//! long one is ignored there; `scripts/faults.sh` runs it, for
//! `ORDERFLOW_FAULTS_SECONDS` (default 180) of faults.

use std::time::Duration;

use fault_tests::storm::{self, StormPlan};
use fault_tests::FaultStack;
use stack_tests::StackOptions;

async fn storm_of(mut plan: StormPlan) {
    // `ORDERFLOW_FAULTS_ONLY=stall` keeps only the faults whose description
    // contains it, to chase one failure.
    if let Ok(only) = std::env::var("ORDERFLOW_FAULTS_ONLY") {
        plan.faults
            .retain(|fault| fault.to_string().contains(&only));
        assert!(!plan.faults.is_empty(), "no fault matches {only}");
    }
    let mut fs = FaultStack::start(StackOptions::default()).await.unwrap();
    let report = match storm::run(&mut fs, &plan).await {
        Ok(report) => report,
        Err(err) => panic!("the storm did not complete: {err:#}"),
    };
    let table = report.render();
    println!("{table}");
    eprintln!("{table}");
    assert!(
        report.record.accepted().count() > 0,
        "no order was accepted at all"
    );
    if !report.holds() {
        for service in stack_tests::Service::ALL {
            let log = std::fs::read_to_string(fs.stack.log_path(service)).unwrap_or_default();
            let trouble: Vec<&str> = log
                .lines()
                .filter(|l| {
                    l.contains("\"WARN\"") || l.contains("\"ERROR\"") || l.starts_with("----")
                })
                .take(40)
                .collect();
            eprintln!(
                "==== first warnings of {service} ====\n{}",
                trouble.join("\n")
            );
        }
    }
    assert!(
        report.holds(),
        "LOST {} / DUPLICATED {} or an invariant broke:\n{table}",
        report.lost,
        report.duplicated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_storm_of_every_fault_kind_loses_and_doubles_no_order() {
    storm_of(StormPlan {
        faults: storm::every_fault(),
        duration: Duration::ZERO,
        hold: Duration::from_millis(1500),
        calm: Duration::from_millis(500),
        rate: 30,
        customers: 4,
        products: 4,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: scripts/faults.sh runs it"]
async fn a_long_storm_of_repeated_faults_loses_and_doubles_no_order() {
    let seconds: u64 = std::env::var("ORDERFLOW_FAULTS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    storm_of(StormPlan {
        faults: storm::every_fault(),
        duration: Duration::from_secs(seconds),
        hold: Duration::from_secs(3),
        calm: Duration::from_secs(1),
        rate: 40,
        customers: 8,
        products: 6,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_loses_and_doubles_no_order() {
    storm_of(StormPlan {
        faults: storm::rolling_restart(),
        duration: Duration::ZERO,
        hold: Duration::ZERO,
        calm: Duration::from_millis(500),
        rate: 30,
        customers: 4,
        products: 3,
    })
    .await;
}
