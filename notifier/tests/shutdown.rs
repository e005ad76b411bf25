//! SIGTERM to the notifier binary: it exits 0 within bounds.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use testkit::{eventually, TestDatabase, TestNamespace};
use tokio::process::Command;

/// How long the notifier may take to exit after SIGTERM.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_notifier_with_status_zero_within_bounds() {
    testkit::init_logging();
    let db = TestDatabase::create().await.unwrap();
    let ns = TestNamespace::new();
    let addr = free_address();
    let mut notifier = Command::new(env!("CARGO_BIN_EXE_notifier"))
        .envs(testkit::env_vars(
            &db,
            &ns,
            &[("ORDERFLOW_METRICS_ADDR", addr.to_string().as_str())],
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the notifier binary");
    eventually(
        Duration::from_secs(30),
        "the notifier to serve /healthz",
        || async {
            let response = reqwest::get(format!("http://{addr}/healthz")).await.ok()?;
            response.status().is_success().then_some(())
        },
    )
    .await;

    let pid = Pid::from_raw(notifier.id().expect("running") as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(EXIT_WITHIN, notifier.wait())
        .await
        .expect("the notifier exits within bounds of SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}
