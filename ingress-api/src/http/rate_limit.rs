//! The per-client rate limit (`ORDERFLOW_RATE_LIMIT_PER_CLIENT`): a token
//! bucket per client, refilled at the limit a second and holding two
//! seconds' worth, so a client may burst briefly but not sustain more.
//!
//! A client is the user of a validly signed bearer token (or console session
//! cookie), whatever address it comes from; without one, the peer address of the connection. The
//! forwarded-for headers are not read: any client can write them, so they
//! would let one client pose as many. Behind a proxy every anonymous client
//! therefore shares the proxy's bucket, which only the anonymous routes
//! (register, login, the OpenAPI document) feel.
//!
//! The buckets live in memory on each replica: the limit holds per replica,
//! so N replicas behind a balancer let a client make up to N times the limit.
//! Counting in a shared store would put a round trip on every request to
//! stop a client that the balancer already spreads. Memory is bounded: at
//! most [`MAX_TRACKED_CLIENTS`] buckets; a full bucket (an idle client) is
//! the same as none and is dropped first, and when a flood of distinct
//! clients leaves none idle, arbitrary buckets are dropped, which at worst
//! gives those clients a fresh burst.
//!
//! `/healthz`, `/readyz` and `/metrics` are never limited, so probes and
//! scrapes keep working whatever a client does.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use orderflow_core::metric_names;
use uuid::Uuid;

use crate::auth::{AuthUser, VerifiedToken};
use crate::error::ApiError;
use crate::state::AppState;

/// Most clients whose buckets one replica keeps (about 80 bytes each).
pub const MAX_TRACKED_CLIENTS: usize = 65_536;

/// The routes never limited: probes and scrapes.
pub const EXEMPT_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Seconds of the rate a bucket holds: the burst a client may make at once.
const BURST_SECONDS: f64 = 2.0;

/// Independently locked parts of the table, so concurrent requests of
/// different clients rarely wait for one another.
const SHARDS: usize = 16;

/// Who a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// The user of a validly signed bearer token.
    User(Uuid),
    /// The connection's peer address, for requests without a valid token.
    Address(IpAddr),
}

impl Client {
    fn label(&self) -> &'static str {
        match self {
            Client::User(_) => "user",
            Client::Address(_) => "address",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of every client; cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Option<Arc<Buckets>>,
}

struct Buckets {
    per_second: u32,
    rate: f64,
    burst: f64,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<Client, Bucket>>>,
    shard_capacity: usize,
}

impl RateLimiter {
    /// A limiter of `per_second` requests a second per client; 0 for none.
    pub fn new(per_second: u32) -> Self {
        Self::with_capacity(per_second, MAX_TRACKED_CLIENTS)
    }

    fn with_capacity(per_second: u32, clients: usize) -> Self {
        if per_second == 0 {
            return Self { inner: None };
        }
        let rate = f64::from(per_second);
        Self {
            inner: Some(Arc::new(Buckets {
                per_second,
                rate,
                burst: (rate * BURST_SECONDS).max(1.0),
                hasher: RandomState::new(),
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                shard_capacity: (clients / SHARDS).max(8),
            })),
        }
    }

    /// The limit a second, or `None` when there is none.
    pub fn per_second(&self) -> Option<u32> {
        self.inner.as_ref().map(|b| b.per_second)
    }

    /// Takes one request from `client`'s bucket; `Err` with the whole
    /// seconds (at least 1) until the next request would be allowed.
    pub fn check(&self, client: Client) -> Result<(), u64> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: Client, now: Instant) -> Result<(), u64> {
        let Some(buckets) = &self.inner else {
            return Ok(());
        };
        let shard = buckets.hasher.hash_one(client) as usize % SHARDS;
        let mut table = buckets.shards[shard].lock().expect("rate limit table");
        if !table.contains_key(&client) && table.len() >= buckets.shard_capacity {
            buckets.make_room(&mut table, now);
        }
        let bucket = table.entry(client).or_insert(Bucket {
            tokens: buckets.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * buckets.rate).min(buckets.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / buckets.rate;
            Err((wait.ceil() as u64).max(1))
        }
    }

    /// Buckets held, for tests of the memory bound.
    pub fn tracked(&self) -> usize {
        self.inner.as_ref().map_or(0, |b| {
            b.shards
                .iter()
                .map(|s| s.lock().expect("rate limit table").len())
                .sum()
        })
    }
}

impl Buckets {
    /// Frees at least an eighth of a full shard: first the buckets that have
    /// refilled (their clients are idle, and a fresh bucket is the same),
    /// then arbitrary ones. Freeing an eighth at a time keeps the cost of
    /// the sweep to a few steps per new client even under a flood.
    fn make_room(&self, table: &mut HashMap<Client, Bucket>, now: Instant) {
        table.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens + elapsed * self.rate < self.burst
        });
        let keep = self.shard_capacity - self.shard_capacity / 8;
        if table.len() > keep {
            let victims: Vec<Client> = table.keys().take(table.len() - keep).copied().collect();
            for victim in victims {
                table.remove(&victim);
            }
        }
    }
}

/// Refuses a request over its client's limit with 429 and `Retry-After`.
pub async fn limit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(per_second) = state.rate_limiter.per_second() else {
        return next.run(request).await;
    };
    if EXEMPT_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let client = client_of(&state, &mut request);
    match state.rate_limiter.check(client) {
        Ok(()) => next.run(request).await,
        Err(retry_after_seconds) => {
            metrics::counter!(metric_names::HTTP_RATE_LIMITED, "client" => client.label())
                .increment(1);
            ApiError::TooManyRequests {
                detail: format!(
                    "more than {per_second} requests a second from one client \
                     (ORDERFLOW_RATE_LIMIT_PER_CLIENT); retry after {retry_after_seconds} s"
                ),
                retry_after_seconds,
            }
            .into_response()
        }
    }
}

/// The user of a validly signed bearer token (revoked or not: it still names
/// who sends it), else the peer address.
/// Who `request` counts against. A token verified here is left in the
/// request's extensions for the route's extractor, so no request pays for
/// two signature checks.
fn client_of(state: &AppState, request: &mut Request) -> Client {
    let user = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| AuthUser::verified(state, token));
    if let Some(user) = user {
        request.extensions_mut().insert(VerifiedToken(user));
        return Client::User(user.id);
    }
    // The web console's session cookie names its user too. It only picks the
    // bucket: it is never left for the bearer extractor, so the cookie
    // cannot authenticate a JSON route.
    let console_user = crate::console::session::token_in(request.headers())
        .and_then(|token| AuthUser::verified(state, token));
    if let Some(user) = console_user {
        return Client::User(user.id);
    }
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
        // Only a router driven without a server (a test's `oneshot`) has no
        // peer; all such requests share one bucket.
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    Client::Address(address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn address(n: u32) -> Client {
        Client::Address(IpAddr::V4(Ipv4Addr::from(n)))
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_refill() {
        let limiter = RateLimiter::new(5);
        let start = Instant::now();
        for _ in 0..10 {
            assert_eq!(limiter.check_at(address(1), start), Ok(()));
        }
        assert_eq!(limiter.check_at(address(1), start), Err(1));
        assert_eq!(limiter.check_at(address(2), start), Ok(()));
        let later = start + Duration::from_millis(200);
        assert_eq!(limiter.check_at(address(1), later), Ok(()));
        assert!(limiter.check_at(address(1), later).is_err());
    }

    #[test]
    fn zero_means_no_limit_and_no_memory() {
        let limiter = RateLimiter::new(0);
        for _ in 0..10_000 {
            assert_eq!(limiter.check(address(1)), Ok(()));
        }
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn a_flood_of_distinct_addresses_does_not_grow_the_table_beyond_its_bound() {
        let limiter = RateLimiter::with_capacity(50, 1024);
        let now = Instant::now();
        for n in 0..200_000 {
            let _ = limiter.check_at(address(n), now);
        }
        assert!(limiter.tracked() <= 1024, "{} buckets", limiter.tracked());
    }

    #[test]
    fn idle_clients_are_dropped_before_busy_ones() {
        let limiter = RateLimiter::with_capacity(1, SHARDS * 8);
        let start = Instant::now();
        // A full table of clients that then fall idle.
        for n in 0..1_000 {
            let _ = limiter.check_at(address(n), start);
        }
        // A busy client: its bucket is empty.
        let busy = Client::User(Uuid::nil());
        while limiter.check_at(busy, start).is_ok() {}
        // The idle buckets have refilled; the busy one holds 1.5 requests.
        // Newcomers to the busy client's own shard make room there: six of
        // them, so that with the idle buckets gone the shard still fits
        // them and the busy one, and nothing needs to go arbitrarily.
        let later = start + Duration::from_millis(1_500);
        let buckets = limiter.inner.as_ref().unwrap();
        let shard_of = |client: Client| buckets.hasher.hash_one(client) as usize % SHARDS;
        let newcomers = (1_000..)
            .map(address)
            .filter(|client| shard_of(*client) == shard_of(busy))
            .take(6);
        for client in newcomers {
            let _ = limiter.check_at(client, later);
        }
        assert_eq!(limiter.check_at(busy, later), Ok(()));
        assert!(
            limiter.check_at(busy, later).is_err(),
            "the busy client kept its bucket"
        );
    }
}
