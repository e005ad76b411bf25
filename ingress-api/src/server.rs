//! The connection loop: accepts connections and serves HTTP/1.1 and HTTP/2
//! on them with the limits that protect the process itself.
//!
//! - At most `ORDERFLOW_MAX_CONNECTIONS` connections are open at once. The
//!   loop takes a permit before it accepts, so at the limit new clients wait
//!   in the kernel's accept queue (and beyond it are refused by the kernel)
//!   instead of each costing a file descriptor and a task. A limit on
//!   connections rather than on requests in flight (tower's
//!   `ConcurrencyLimit`): descriptors are what a flood exhausts, and it
//!   bounds requests too, one at a time per HTTP/1.1 connection and
//!   hyper's stream limit per HTTP/2 connection, without queueing requests
//!   that are already read.
//! - A request head (request line and headers) larger than
//!   [`MAX_HEADER_BYTES`] is answered 431 and its connection closed; for
//!   HTTP/2 the same bound applies to the header list. Nothing larger is
//!   buffered, so open connections cannot make the process grow.
//! - A connection gets hyper's 30 seconds to send each request head, fresh
//!   or kept alive between requests, so connections that send nothing (or
//!   send a head a byte at a time) do not hold their permits forever. This
//!   needs the timer given to both protocols below.
//!
//! Every request carries its peer address as `ConnectInfo<SocketAddr>`,
//! which the rate limit reads. On shutdown the loop stops accepting, lets
//! each connection finish its requests in flight and waits for them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use orderflow_core::limits::MAX_HEADER_BYTES;
use orderflow_core::metric_names;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown`, with at most
/// `max_connections` connections open at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    let connections = TaskTracker::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors or memory: wait a little rather than
                // spin; a client that gave up before the accept is nothing.
                if !is_connection_error(&err) {
                    tracing::warn!(%err, "cannot accept a connection");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
                continue;
            }
        };
        let service = router
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(Body::new)
            });
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            metrics::gauge!(metric_names::HTTP_OPEN_CONNECTIONS).increment(1.0);
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service),
            );
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                // A client that went away, or sent a head too large: the
                // client's problem, and logging it would let clients flood
                // the logs.
                tracing::debug!(%peer, err = %err, "connection ended with an error");
            }
            metrics::gauge!(metric_names::HTTP_OPEN_CONNECTIONS).decrement(1.0);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

fn is_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}
