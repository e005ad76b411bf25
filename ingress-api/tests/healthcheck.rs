//! `ingress-api healthcheck`, the real binary: exit 0 against a running
//! API, 1 with a one-line reason against one answering 503, 2 for an
//! unknown command. Its own environment points the database and broker at
//! closed ports: the subcommand must not need them.

mod support;

use std::net::SocketAddr;
use std::process::Output;

use support::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn run_binary(args: &[&str], http_addr: SocketAddr) -> Output {
    testkit::run_without_dependencies(
        env!("CARGO_BIN_EXE_ingress-api"),
        args,
        &[("ORDERFLOW_HTTP_ADDR", http_addr.to_string())],
    )
    .await
}

/// The port of a `http://host:port` base URL.
fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn healthcheck_exits_0_against_a_running_api_bound_to_every_interface() {
    let app = TestApp::start_with(&[], false).await;
    let bind_addr: SocketAddr = format!("0.0.0.0:{}", port_of(&app.base)).parse().unwrap();

    let output = run_binary(&["healthcheck"], bind_addr).await;
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty(), "the probe logged: {output:?}");
}

#[tokio::test]
async fn healthcheck_exits_1_with_a_one_line_reason_when_healthz_answers_503() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 512];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => head.extend_from_slice(&chunk[..read]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });

    let output = run_binary(&["healthcheck"], addr).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let reason = String::from_utf8_lossy(&output.stderr);
    assert_eq!(reason.trim_end().lines().count(), 1, "{reason:?}");
    assert!(reason.contains("503"), "{reason:?}");
}

#[tokio::test]
async fn an_unknown_command_is_a_usage_error_naming_the_commands() {
    let output = run_binary(&["healthz"], "127.0.0.1:1".parse().unwrap()).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let usage = String::from_utf8_lossy(&output.stderr);
    for command in ["serve", "reconcile", "healthcheck"] {
        assert!(usage.contains(command), "{usage:?}");
    }
}
