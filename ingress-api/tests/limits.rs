//! The limits that protect ingress-api from abusive clients: the per-client
//! rate limit, the connection cap and the request head cap, the last two
//! over real sockets.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use support::{problem, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The whole seconds of a 429's `Retry-After`.
fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds")
}

/// Sends `count` requests to `path` one after another, as `token`'s user or
/// anonymously; returns the first refused one, if any.
async fn first_refusal(
    app: &TestApp,
    token: Option<&str>,
    path: &str,
    count: usize,
) -> Option<reqwest::Response> {
    for _ in 0..count {
        let mut request = app.http.get(app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            return Some(response);
        }
        assert!(response.status().is_success(), "{}", response.status());
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_limit_is_refused_with_429_while_other_clients_and_probes_are_not() {
    let app = TestApp::start_with(&[("ORDERFLOW_RATE_LIMIT_PER_CLIENT", "5")], false).await;
    let (_, first) = app.customer().await;
    let (_, second) = app.customer().await;

    // 5 a second with a burst of 10: 40 quick requests cannot all pass.
    let refused = first_refusal(&app, Some(&first), "/orders", 40)
        .await
        .expect("a request over the limit is refused");
    let wait = retry_after(&refused);
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    let body = problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["type"], "/problems/too-many-requests");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("5 requests a second")
            && detail.contains("ORDERFLOW_RATE_LIMIT_PER_CLIENT"),
        "the answer names the limit: {detail}"
    );

    // Another user has a bucket of their own, and probes and scrapes are
    // never limited.
    assert_eq!(app.get(&second, "/orders").await.status(), StatusCode::OK);
    for path in ["/healthz", "/readyz", "/metrics"] {
        for _ in 0..30 {
            let response = app.http.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
    }
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l
            .starts_with("orderflow_http_rate_limited_total{client=\"user\"}")
            && !l.ends_with(" 0")),
        "the refusal is counted"
    );

    // The bucket refills: the same user gets through again.
    testkit::eventually(
        Duration::from_secs(5),
        "the first user's bucket to refill",
        || async { (app.get(&first, "/orders").await.status() == StatusCode::OK).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_without_a_token_is_limited_on_its_own_bucket() {
    let app = TestApp::start_with(&[("ORDERFLOW_RATE_LIMIT_PER_CLIENT", "5")], false).await;
    let (_, token) = app.customer().await;
    let refused = first_refusal(&app, None, "/openapi.json", 40)
        .await
        .expect("anonymous requests over the limit are refused");
    assert!(retry_after(&refused) >= 1);
    problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    // The same address with a token counts as its user.
    assert_eq!(app.get(&token, "/orders").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_of_zero_lets_one_client_make_any_number_of_requests() {
    let app = TestApp::start_with(&[("ORDERFLOW_RATE_LIMIT_PER_CLIENT", "0")], false).await;
    let (_, token) = app.customer().await;
    for _ in 0..5 {
        let answers = futures::future::join_all((0..60).map(|_| app.get(&token, "/orders"))).await;
        for answer in answers {
            assert_eq!(answer.status(), StatusCode::OK);
        }
    }
}

/// Sends a raw HTTP/1.1 request on `stream` and reads until the end of the
/// answer's head; empty when the server closed the connection.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> String {
    // The server may close the connection before the whole request is
    // written; what it answered is still there to read.
    let _ = stream.write_all(request).await;
    read_head(stream).await
}

async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let mut app = TestApp::start_with(&[("ORDERFLOW_MAX_CONNECTIONS", "2")], false).await;
    // The readiness checks' pooled connections would hold the permits.
    drop(std::mem::replace(&mut app.http, reqwest::Client::new()));
    let addr = app.base.trim_start_matches("http://").to_owned();
    let answered = |head: &str| head.starts_with("HTTP/1.1 200");

    let mut first = TcpStream::connect(&addr).await.unwrap();
    let mut second = TcpStream::connect(&addr).await.unwrap();
    for stream in [&mut first, &mut second] {
        let head = tokio::time::timeout(Duration::from_secs(10), exchange(stream, HEALTHZ))
            .await
            .expect("a connection within the cap is served");
        assert!(answered(&head), "{head}");
    }
    // Both kept alive: a third connection is not served...
    let mut third = TcpStream::connect(&addr).await.unwrap();
    third.write_all(HEALTHZ).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(500), read_head(&mut third)).await;
    assert!(
        waiting.is_err(),
        "a third connection was served: {waiting:?}"
    );
    // ...until one of the first two closes.
    drop(first);
    let head = tokio::time::timeout(Duration::from_secs(10), read_head(&mut third))
        .await
        .expect("the waiting connection is served once a permit is free");
    assert!(answered(&head), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_over_the_cap_gets_431_and_the_server_keeps_serving() {
    let app = TestApp::start_with(&[], false).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let with_header = |bytes: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nhost: test\r\nx-padding: {}\r\n\r\n",
            "a".repeat(bytes)
        )
    };

    // Well under the cap of 32 KiB: served.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let head = exchange(&mut stream, with_header(16 * 1024).as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    // Over it, in one header or in many: 431 (or a closed connection), never
    // a 5xx, and the server goes on.
    let many = format!(
        "GET /healthz HTTP/1.1\r\nhost: test\r\n{}\r\n",
        "x-one: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(2_000)
    );
    for request in [with_header(64 * 1024), with_header(1024 * 1024), many] {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let head = tokio::time::timeout(
            Duration::from_secs(10),
            exchange(&mut stream, request.as_bytes()),
        )
        .await
        .expect("an oversized head is answered or closed at once");
        assert!(
            head.is_empty() || head.starts_with("HTTP/1.1 431"),
            "an oversized head got {head}"
        );
    }
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_shutdown_the_server_closes_idle_connections_and_returns() {
    let app = TestApp::start_with(&[], false).await;
    // A replica of its own, to shut down while the test's app goes on.
    let mut settings = app.settings.clone();
    settings.http_addr = "127.0.0.1:0".parse().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let replica = ingress_api::startup::Application::build(settings, shutdown.clone())
        .await
        .unwrap();
    let addr = replica.local_addr();
    let serving = tokio::spawn(replica.serve());

    let mut idle = TcpStream::connect(addr).await.unwrap();
    let head = exchange(&mut idle, HEALTHZ).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("serve returns although a kept-alive connection is open")
        .unwrap()
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the idle connection is closed");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "nothing listens any more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_limit_on_a_verified_token_is_still_checked_for_revocation() {
    // The limiter verifies tokens to key clients by user and hands the
    // verified caller on; the route must still refuse a revoked token.
    let app = TestApp::start_with(&[("ORDERFLOW_RATE_LIMIT_PER_CLIENT", "1000")], false).await;
    let admin = app.admin_token().await;
    let (customer_id, customer) = app.customer().await;
    assert_eq!(app.get(&customer, "/orders").await.status(), StatusCode::OK);

    let deactivated = app
        .patch(
            &admin,
            &format!("/users/{customer_id}"),
            serde_json::json!({"active": false}),
        )
        .await;
    assert_eq!(deactivated.status(), StatusCode::OK);
    testkit::eventually(
        Duration::from_secs(5),
        "the token to be revoked",
        || async {
            let response = app.get(&customer, "/orders").await;
            (response.status() == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;
    let body = problem(
        app.get(&customer, "/orders").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["detail"], "the token was revoked");
}
