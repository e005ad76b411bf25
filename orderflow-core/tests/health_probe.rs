//! The health probe against real local listeners: one answering 200, one
//! answering 503, a closed port, and one that accepts but never answers.

use std::net::SocketAddr;
use std::time::Duration;

use orderflow_core::health_probe::{probe, ProbeError, PROBE_TIMEOUT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Longer than any probe in these tests may take: a probe still running
/// then has hung.
const HANG_LIMIT: Duration = Duration::from_secs(10);

/// A listener on a free loopback port that answers every request with
/// `response` and sends each request head it read to the returned channel.
async fn answering(response: &'static str) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 512];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => head.extend_from_slice(&chunk[..read]),
                    }
                }
                let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, received)
}

async fn probe_within_limit(addr: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
    tokio::time::timeout(HANG_LIMIT, probe(addr, timeout))
        .await
        .expect("the probe hung")
}

#[tokio::test]
async fn a_service_answering_200_is_healthy_and_gets_a_plain_get_of_healthz() {
    let (addr, mut heads) = answering("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;

    probe_within_limit(addr, PROBE_TIMEOUT).await.unwrap();

    let head = heads.recv().await.unwrap();
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("GET /healthz HTTP/1.1"));
    assert!(
        lines.any(|line| line.eq_ignore_ascii_case(&format!("host: {addr}"))),
        "no Host header in {head:?}"
    );
}

#[tokio::test]
async fn a_service_bound_to_every_interface_is_probed_on_loopback() {
    let (addr, mut heads) = answering("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let unspecified: SocketAddr = format!("0.0.0.0:{}", addr.port()).parse().unwrap();

    probe_within_limit(unspecified, PROBE_TIMEOUT)
        .await
        .unwrap();
    // Linux would connect to 0.0.0.0 as to a local address; the Host header
    // shows the probe went to loopback by name, as it must elsewhere.
    let head = heads.recv().await.unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("\r\nhost: 127.0.0.1:{}\r\n", addr.port())),
        "{head:?}"
    );
}

#[tokio::test]
async fn a_service_answering_503_is_unhealthy_with_its_status_in_the_reason() {
    let (addr, _heads) =
        answering("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 11\r\n\r\nnot healthy")
            .await;

    let err = probe_within_limit(addr, PROBE_TIMEOUT).await.unwrap_err();
    assert!(
        matches!(err, ProbeError::Unhealthy { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("503"), "{err}");
}

#[tokio::test]
async fn a_listener_answering_something_other_than_http_is_unhealthy() {
    let (addr, _heads) = answering("SSH-2.0-OpenSSH_9.2\r\n").await;

    let err = probe_within_limit(addr, PROBE_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, ProbeError::NotHttp { .. }), "{err:?}");
}

#[tokio::test]
async fn a_closed_port_is_unhealthy_at_once() {
    // A port that was free a moment ago and has nothing listening now.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let err = probe_within_limit(addr, PROBE_TIMEOUT).await.unwrap_err();
    assert!(matches!(err, ProbeError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn a_listener_that_accepts_and_never_answers_times_out_instead_of_hanging() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and hold every connection open without a byte in reply.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            held.push(stream);
        }
    });

    let timeout = Duration::from_millis(300);
    let err = probe_within_limit(addr, timeout).await.unwrap_err();
    assert!(
        matches!(err, ProbeError::Timeout { timeout: t, .. } if t == timeout),
        "{err:?}"
    );
    holder.abort();
}
