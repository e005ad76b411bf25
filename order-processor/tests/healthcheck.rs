//! `order-processor healthcheck`, the real binary, against the processor's
//! real `/healthz` router: exit 0 while it answers, 1 with a one-line reason
//! once it is gone, 2 for an unknown command. No database or broker is
//! reachable: the subcommand must not need them.

use std::net::SocketAddr;
use std::process::Output;

use tokio_util::sync::CancellationToken;

/// Runs the binary with `args` and only the given settings in its
/// environment. The database and broker URLs point at closed ports.
async fn run_binary(args: &[&str], metrics_addr: SocketAddr) -> Output {
    testkit::run_without_dependencies(
        env!("CARGO_BIN_EXE_order-processor"),
        args,
        &[("ORDERFLOW_METRICS_ADDR", metrics_addr.to_string())],
    )
    .await
}

#[tokio::test]
async fn healthcheck_exits_0_while_healthz_answers_and_1_with_a_one_line_reason_once_it_is_gone() {
    let listener = orderflow_core::listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = CancellationToken::new();
    let server = tokio::spawn(order_processor::http::serve(listener, stop.clone()));
    // Bound to every interface, as in the container image.
    let bind_addr: SocketAddr = format!("0.0.0.0:{port}").parse().unwrap();

    let healthy = run_binary(&["healthcheck"], bind_addr).await;
    assert!(
        healthy.status.success(),
        "{:?}: {}",
        healthy.status,
        String::from_utf8_lossy(&healthy.stderr)
    );
    assert!(healthy.stdout.is_empty(), "the probe logged: {healthy:?}");

    stop.cancel();
    server.await.unwrap();
    let gone = run_binary(&["healthcheck"], bind_addr).await;
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    let reason = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(reason.trim_end().lines().count(), 1, "{reason:?}");
    assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason:?}");
}

#[tokio::test]
async fn an_unknown_command_is_a_usage_error_naming_the_commands() {
    let output = run_binary(&["healthz"], "127.0.0.1:1".parse().unwrap()).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let usage = String::from_utf8_lossy(&output.stderr);
    assert!(usage.contains("healthcheck"), "{usage:?}");
}
