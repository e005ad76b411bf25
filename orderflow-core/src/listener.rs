//! Listening sockets with an accept queue sized for bursts of connections.
//!
//! `TcpListener::bind` asks the kernel for a queue of 128 connections. A burst
//! of new clients (an open-loop load, a fleet reconnecting after a restart)
//! overflowed it: the kernel dropped their SYNs, and each retried after 1 s,
//! 3 s, 7 s, ... so a few requests took 27 s while the service idled.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel may hold waiting for `accept`; it caps this at
/// `net.core.somaxconn` (4096 on current kernels).
pub const ACCEPT_BACKLOG: u32 = 4096;

/// Binds `addr` (port 0: any free port) with an accept queue of
/// [`ACCEPT_BACKLOG`].
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As std and tokio do: a restarted service can bind at once although its
    // previous connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_connections_beyond_128_waits_in_the_queue_instead_of_being_dropped() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        // Nobody accepts: every connection must wait in the accept queue.
        // With the default queue of 128 the later ones would hang in SYN
        // retransmission and time out.
        let connects = (0..600).map(|_| {
            tokio::time::timeout(
                std::time::Duration::from_millis(900),
                tokio::net::TcpStream::connect(addr),
            )
        });
        let results = futures::future::join_all(connects).await;
        let connected = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(
            connected, 600,
            "connections were dropped from the accept queue"
        );
        drop(listener);
    }
}
