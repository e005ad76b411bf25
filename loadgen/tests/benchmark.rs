//! The short benchmark CI runs: loadgen against the real stack (the three
//! service binaries, a database and a NATS namespace of its own) for a few
//! seconds, closed loop against the baseline and then open loop. It checks
//! that the tool works end to end and that every invariant holds; it judges
//! no speed (BENCHMARKS.md has the figures and how they were measured).

use std::process::Output;

use serde_json::Value;
use stack_tests::Stack;

/// Runs loadgen with `args` against `stack`, writing the report to `json`.
async fn loadgen(stack: &Stack, args: &[&str], json: &std::path::Path) -> (Output, Value) {
    let nats_url = testkit::nats_url();
    let api_url = stack.api_url();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    command
        .args(args)
        .args(["--base-url", &api_url])
        .args(["--database-url", &stack.db.url])
        .args(["--nats-url", &nats_url])
        .args(["--namespace", &stack.ns.namespace])
        .args(["--admin-email", &stack.admin_email])
        .args(["--admin-password", &stack.admin_password])
        .arg("--json")
        .arg(json);
    let output = command.output().await.expect("run loadgen");
    assert!(
        output.status.success(),
        "loadgen {args:?} failed ({}):\n{}\n{}\nservice logs:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        stack.logs()
    );
    let report = serde_json::from_slice(&std::fs::read(json).expect("read the report"))
        .expect("the report is JSON");
    (output, report)
}

/// The checks every run's report must pass: all accepted orders decided, the
/// invariants held, and the stock sold out (so the rejections were real).
fn assert_sound(report: &Value) {
    let system = report["system"].as_str().unwrap_or("?");
    assert_eq!(report["invariants_hold"], true, "{system}: {report:#}");
    let accepted = report["accepted"].as_u64().expect("accepted");
    assert!(accepted > 0, "{system} accepted nothing");
    assert_eq!(
        report["decided"].as_u64(),
        Some(accepted),
        "{system}: every accepted order decided"
    );
    assert!(
        report["confirmed"].as_u64().unwrap_or(0) > 0,
        "{system} confirmed nothing"
    );
    for check in report["invariants"].as_array().expect("the checks") {
        assert_eq!(check["ok"], true, "{system}: {check}");
    }
    // The stack runs without the per-client rate limit, as benchmarks must:
    // one customer at these rates would be over it.
    assert!(
        report["failed"].get("http_429").is_none(),
        "{system}: orders were refused by a rate limit: {report:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_seconds_of_load_against_the_stack_and_the_baseline_keep_every_invariant() {
    testkit::init_logging();
    let stack = Stack::start().await.expect("start the stack");
    let dir = tempfile::tempdir().expect("a temporary directory");

    // Closed loop, multi-line zipf orders over a few products with little
    // stock: both systems sell out and reject, on the same orders.
    let (_, comparison) = loadgen(
        &stack,
        &[
            "compare",
            "--shape",
            "zipf",
            "--products",
            "20",
            "--lines",
            "2",
            "--stock",
            "40",
            "--customers",
            "4",
            "--connections",
            "8",
            "--duration",
            "3",
        ],
        &dir.path().join("compare.json"),
    )
    .await;
    assert_sound(&comparison["baseline"]);
    assert_sound(&comparison["orderflow"]);
    assert!(
        comparison["decided_per_second_ratio"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0
    );

    // Open loop at a fixed rate: every decision event is seen and timed from
    // the order's scheduled send.
    let (output, run) = loadgen(
        &stack,
        &[
            "run",
            "--shape",
            "hot",
            "--stock",
            "100",
            "--customers",
            "4",
            "--rate",
            "200",
            "--duration",
            "2",
        ],
        &dir.path().join("run.json"),
    )
    .await;
    assert_sound(&run);
    assert_eq!(
        run["decisions_observed"], run["accepted"],
        "every decision event arrived: {run:#}"
    );
    assert!(
        run["rejected"]["insufficient_stock"].as_u64().unwrap_or(0) > 0,
        "the hot product sold out: {run:#}"
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    for figure in [
        "accepted/s",
        "decided/s",
        "POST /orders",
        "send to decision",
        "invariants  hold",
    ] {
        assert!(
            printed.contains(figure),
            "the report prints {figure}:\n{printed}"
        );
    }
}
