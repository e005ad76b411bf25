//! SIGTERM to the ingress-api binary: a `POST /orders` already in flight is
//! answered 202, new connections are refused, and the process exits 0 within
//! bounds.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use testkit::{eventually, TestDatabase, TestNamespace};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;

/// How long ingress-api may take to exit after SIGTERM.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_an_order_in_flight_refuses_new_connections_and_exits_zero() {
    testkit::init_logging();
    let db = TestDatabase::create().await.unwrap();
    let ns = TestNamespace::new();
    let addr = free_address();
    let mut ingress = Command::new(env!("CARGO_BIN_EXE_ingress-api"))
        .envs(testkit::env_vars(
            &db,
            &ns,
            &[("ORDERFLOW_HTTP_ADDR", addr.to_string().as_str())],
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the ingress-api binary");
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    eventually(
        Duration::from_secs(30),
        "ingress-api to be ready",
        || async {
            let ready: Value = http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (ready["database"] == "up").then_some(())
        },
    )
    .await;
    let credentials = json!({"email": "leaving@example.com", "password": "customer-password"});
    let registered = http
        .post(format!("{base}/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let login: Value = http
        .post(format!("{base}/auth/login"))
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();

    // An order in flight: its headers and half its body sent, the rest held
    // back until after the signal.
    let body = br#"{"items":[{"sku":"LEAVING-1","quantity":1}]}"#;
    let (head, tail) = body.split_at(body.len() / 2);
    let mut in_flight = TcpStream::connect(addr).await.unwrap();
    in_flight
        .write_all(
            format!(
                "POST /orders HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    in_flight.write_all(head).await.unwrap();
    in_flight.flush().await.unwrap();
    // The signal must find the order in flight: a connection whose request
    // head the server has not read yet is idle, and is rightly closed.
    eventually(
        Duration::from_secs(10),
        "the order's head read by ingress-api",
        || async {
            let metrics = http
                .get(format!("{base}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            metrics
                .lines()
                .any(|line| line == r#"orderflow_http_requests_in_flight{route="/orders"} 1"#)
                .then_some(())
        },
    )
    .await;

    let pid = Pid::from_raw(ingress.id().expect("running") as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    let signalled = Instant::now();

    // New connections are refused while the order in flight is still open.
    eventually(
        Duration::from_secs(5),
        "new connections refused",
        || async { TcpStream::connect(addr).await.is_err().then_some(()) },
    )
    .await;
    assert!(
        ingress.try_wait().unwrap().is_none(),
        "ingress-api waits for the request in flight"
    );

    in_flight.write_all(tail).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(EXIT_WITHIN, in_flight.read_to_end(&mut response))
        .await
        .expect("the order in flight is answered")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 202"),
        "the order in flight is accepted: {response}"
    );

    let status = tokio::time::timeout(
        EXIT_WITHIN.saturating_sub(signalled.elapsed()),
        ingress.wait(),
    )
    .await
    .expect("ingress-api exits within bounds of SIGTERM")
    .unwrap();
    assert!(status.success(), "exit status {status:?}");
}
