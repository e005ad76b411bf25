//! The `healthcheck` subcommand every service binary has: one `GET /healthz`
//! against the service's own listener, healthy on 200 only.
//!
//! The container images carry no shell and no curl, so the binary probes
//! itself. The request is a minimal HTTP/1.1 exchange over a plain TCP
//! stream: a probe needs no HTTP client, TLS or connection pool, and none of
//! the service's start-up (no logging, database or broker).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one probe may take, connect to status line: well inside the
/// timeouts orchestrators give a healthcheck command, so the probe reports
/// its own reason instead of being killed without one.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The path every service answers liveness on.
pub const HEALTH_PATH: &str = "/healthz";

/// The longest status line read; a real one is a few dozen bytes.
const MAX_STATUS_LINE: usize = 1024;

/// Why a probe found the service unhealthy. Each reads as one line, the
/// underlying I/O error included.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Nothing accepted the connection (refused, unreachable, ...).
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        addr: SocketAddr,
        error: std::io::Error,
    },
    /// The connection broke while sending the request or reading the answer.
    #[error("GET {HEALTH_PATH} on {addr} failed: {error}")]
    Io {
        addr: SocketAddr,
        error: std::io::Error,
    },
    /// No complete status line within the timeout.
    #[error("{addr} gave no answer to GET {HEALTH_PATH} within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    /// Something answered, but not with an HTTP status line.
    #[error("{addr} answered GET {HEALTH_PATH} with something other than HTTP: {answer:?}")]
    NotHttp { addr: SocketAddr, answer: String },
    /// The service answered, but not with 200.
    #[error("{addr} answered GET {HEALTH_PATH} with status {status}")]
    Unhealthy { addr: SocketAddr, status: u16 },
}

/// Where to reach a service bound to `bind_addr`: the address itself, except
/// that an unspecified one (`0.0.0.0`, `[::]`), which listens on every
/// interface, is reached on the loopback address of its family.
pub fn probe_address(bind_addr: SocketAddr) -> SocketAddr {
    let ip = match bind_addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bind_addr.port())
}

/// Sends `GET /healthz` to the service bound to `bind_addr` and succeeds
/// when it answers 200 within `timeout`.
pub async fn probe(bind_addr: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
    let addr = probe_address(bind_addr);
    let status = tokio::time::timeout(timeout, status_of_health_request(addr))
        .await
        .map_err(|_| ProbeError::Timeout { addr, timeout })??;
    if status == 200 {
        Ok(())
    } else {
        Err(ProbeError::Unhealthy { addr, status })
    }
}

/// Runs the `healthcheck` subcommand: probes the service bound to
/// `bind_addr` (or reports why that address is not known) on a runtime of
/// its own, and prints the reason for a failure as one line on stderr.
/// Exit code 0 when healthy, 1 otherwise, as container healthchecks expect.
pub fn run(bind_addr: anyhow::Result<SocketAddr>) -> ExitCode {
    let outcome = bind_addr.and_then(|addr| {
        // One thread is plenty for one request, and starts faster than the
        // multi-threaded runtime the service itself uses.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(probe(addr, PROBE_TIMEOUT))?;
        Ok(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("healthcheck failed: {}", one_line(&format!("{err:#}")));
            ExitCode::FAILURE
        }
    }
}

/// The status code of `GET /healthz` on `addr`.
async fn status_of_health_request(addr: SocketAddr) -> Result<u16, ProbeError> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|error| ProbeError::Connect { addr, error })?;
    // `Connection: close` so the server does not hold a keep-alive
    // connection for a client that leaves after the status line.
    let request = format!(
        "GET {HEALTH_PATH} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: orderflow-healthcheck\r\nConnection: close\r\n\r\n"
    );
    let io = |error| ProbeError::Io { addr, error };
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let line = read_status_line(&mut stream).await.map_err(io)?;
    parse_status(&line).ok_or_else(|| ProbeError::NotHttp {
        addr,
        answer: String::from_utf8_lossy(&line).into_owned(),
    })
}

/// Reads up to the end of the first line (or of the stream, or
/// [`MAX_STATUS_LINE`] bytes, whichever comes first).
async fn read_status_line(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::with_capacity(64);
    let mut chunk = [0u8; 256];
    while line.len() < MAX_STATUS_LINE {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        line.extend_from_slice(&chunk[..read]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            line.truncate(end);
            break;
        }
    }
    line.truncate(MAX_STATUS_LINE);
    Ok(line)
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn parse_status(line: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|code| (100..=599).contains(code))
}

/// `text` on one line, so a reason never spills over several log lines of
/// the orchestrator that records it.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_bind_addresses_are_probed_on_loopback_and_others_as_they_are() {
        let cases = [
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("[::]:9091", "[::1]:9091"),
            ("127.0.0.1:9092", "127.0.0.1:9092"),
            ("10.1.2.3:8080", "10.1.2.3:8080"),
            ("[::1]:8080", "[::1]:8080"),
        ];
        for (bind, expected) in cases {
            assert_eq!(
                probe_address(bind.parse().unwrap()),
                expected.parse::<SocketAddr>().unwrap(),
                "{bind}"
            );
        }
    }

    #[test]
    fn status_lines_give_their_code_and_anything_else_none() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 503 Service Unavailable"), Some(503));
        assert_eq!(parse_status(b"HTTP/1.1 204"), Some(204));
        for not_http in [
            &b""[..],
            b"SSH-2.0-OpenSSH_9.2",
            b"HTTP/1.1 20 OK",
            b"HTTP/1.1 abc OK",
            b"HTTP/2 200",
            b"HTTP/1.1 999 Odd",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_status(not_http), None, "{not_http:?}");
        }
    }

    #[test]
    fn reasons_are_flattened_to_one_line() {
        assert_eq!(one_line("a\nb \r\n  c"), "a b c");
    }
}
