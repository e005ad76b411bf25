//! The proxy itself: each mode does what the storms rely on.

use std::time::{Duration, Instant};

use fault_tests::proxy::{Mode, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server on a free port.
async fn echo() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 1024];
                while let Ok(n) = socket.read(&mut buffer).await {
                    if n == 0 || socket.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

async fn round_trip(socket: &mut TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
    socket.write_all(text).await?;
    let mut answer = vec![0u8; text.len()];
    socket.read_exact(&mut answer).await?;
    Ok(answer)
}

#[tokio::test]
async fn a_stalled_connection_moves_nothing_and_resumes_where_it_was() {
    let proxy = Proxy::start(echo().await).await.unwrap();
    let mut socket = TcpStream::connect(proxy.address()).await.unwrap();
    assert_eq!(round_trip(&mut socket, b"one").await.unwrap(), b"one");

    proxy.set(Mode::Stall);
    socket.write_all(b"two").await.unwrap();
    let mut answer = [0u8; 3];
    let stalled =
        tokio::time::timeout(Duration::from_millis(300), socket.read_exact(&mut answer)).await;
    assert!(stalled.is_err(), "nothing comes back while stalled");

    proxy.set(Mode::Pass);
    tokio::time::timeout(Duration::from_secs(5), socket.read_exact(&mut answer))
        .await
        .expect("the stalled bytes arrive once it passes again")
        .unwrap();
    assert_eq!(&answer, b"two");
    assert_eq!(round_trip(&mut socket, b"three").await.unwrap(), b"three");
}

#[tokio::test]
async fn a_delay_adds_latency_to_each_exchange() {
    let proxy = Proxy::start(echo().await).await.unwrap();
    let mut socket = TcpStream::connect(proxy.address()).await.unwrap();
    proxy.set(Mode::Delay(Duration::from_millis(200)));
    let started = Instant::now();
    assert_eq!(round_trip(&mut socket, b"slow").await.unwrap(), b"slow");
    // Once on the way there, once on the way back.
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_drop_closes_open_connections_and_refuses_new_ones_until_it_passes() {
    let proxy = Proxy::start(echo().await).await.unwrap();
    let mut socket = TcpStream::connect(proxy.address()).await.unwrap();
    assert_eq!(round_trip(&mut socket, b"a").await.unwrap(), b"a");

    proxy.set(Mode::Drop);
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut rest))
        .await
        .expect("the open connection is closed");
    assert!(closed.is_err() || rest.is_empty());
    let mut refused = TcpStream::connect(proxy.address()).await.unwrap();
    assert!(
        round_trip(&mut refused, b"b").await.is_err(),
        "a new connection is refused"
    );

    proxy.set(Mode::Pass);
    let mut again = TcpStream::connect(proxy.address()).await.unwrap();
    assert_eq!(round_trip(&mut again, b"c").await.unwrap(), b"c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_pool_carries_on_after_its_connections_were_stalled() {
    let db = testkit::TestDatabase::create().await.unwrap();
    let upstream: std::net::SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let proxy = Proxy::start(upstream).await.unwrap();
    let url = testkit::database_url_for(
        &format!("postgres://postgres:postgres@{}/postgres", proxy.address()),
        &db.name,
    );
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&url)
        .await
        .unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..200 {
                    let _ = sqlx::query("select pg_sleep(0.01)").execute(&pool).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.set(Mode::Stall);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.set(Mode::Pass);
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(20), worker)
            .await
            .expect("the queries carry on once the link passes again")
            .unwrap();
    }
}
