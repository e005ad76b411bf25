//! A TCP proxy between one service and one dependency, whose behaviour is
//! switched at run time: pass bytes through, delay them, stall them (the
//! connections stay open and nothing moves), or drop (every connection is
//! closed and new ones are refused until the mode changes).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward at once.
    Pass,
    /// Forward each chunk after this long, as a slow network would.
    Delay(Duration),
    /// Forward nothing, keep every connection open.
    Stall,
    /// Close every connection, refuse new ones.
    Drop,
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    address: SocketAddr,
    upstream: SocketAddr,
    mode: watch::Sender<Mode>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind a proxy port")?;
        let address = listener.local_addr()?;
        let (mode, watcher) = watch::channel(Mode::Pass);
        let task = tokio::spawn(accept(listener, upstream, watcher));
        Ok(Self {
            address,
            upstream,
            mode,
            task,
        })
    }

    /// Where services connect to.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Switches every connection, open and future, to `mode`.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set(Mode::Drop);
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, mode: watch::Receiver<Mode>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if *mode.borrow() == Mode::Drop {
            // Refused: closed before a byte is exchanged.
            drop(client);
            continue;
        }
        let mode = mode.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let up = pump(client_read, server_write, mode.clone());
            let down = pump(server_read, client_write, mode);
            // When one direction ends (a close, or a drop), both are closed.
            tokio::select! {
                _ = up => {}
                _ = down => {}
            }
        });
    }
}

/// Copies one direction until either side closes or the mode turns to
/// [`Mode::Drop`].
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            _ = mode.wait_for(|m| *m == Mode::Drop) => return,
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        loop {
            let current = *mode.borrow_and_update();
            match current {
                Mode::Pass => break,
                Mode::Delay(latency) => {
                    tokio::select! {
                        _ = tokio::time::sleep(latency) => break,
                        _ = mode.wait_for(|m| *m == Mode::Drop) => return,
                    }
                }
                Mode::Stall => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
                Mode::Drop => return,
            }
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
