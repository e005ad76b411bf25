//! The state every handler shares.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use orderflow_core::naming::Naming;
use sqlx::PgPool;

use crate::auth::revocation::Revocations;
use crate::auth::token::TokenKeys;
use crate::http::rate_limit::RateLimiter;
use crate::pending::PendingRecorder;
use crate::queue::OrderQueue;

/// The state every handler shares, behind one `Arc`: axum clones the state
/// (with the route's whole service stack) for every request, and a clone of
/// the fields themselves (the stream's cached info, the names, the keys)
/// allocated on every request.
pub type AppState = Arc<Shared>;

pub struct Shared {
    /// The database; may be unreachable, which only some routes mind.
    pub pool: PgPool,
    /// Publishes orders to, and reads pending orders from, the ORDERS stream.
    pub queue: Arc<OrderQueue>,
    /// Records accepted orders as pending in the database, off the request path.
    pub pending: PendingRecorder,
    /// Signs and checks access tokens.
    pub tokens: TokenKeys,
    /// The users whose tokens are refused (deactivated, or tokens older than
    /// their version), kept in memory and refreshed from the database every
    /// second, so checking a token never needs the database.
    pub revocations: Revocations,
    /// The per-client request buckets of this replica.
    pub rate_limiter: RateLimiter,
    pub naming: Naming,
    pub partitions: u16,
    /// The NATS client, for readiness.
    pub nats: async_nats::Client,
    /// The EVENTS stream, which every live stream of every replica reads
    /// through a consumer of its own.
    pub events: async_nats::jetstream::stream::Stream,
    /// The order commands the processor gave up on, for `GET /dead-letters`.
    pub dead_orders: async_nats::jetstream::stream::Stream,
    /// Set once migrations are applied and the configured admin exists, for
    /// readiness: until then database-backed routes may fail.
    pub database_prepared: Arc<AtomicBool>,
    /// Whether the web console's cookies are marked `Secure`: in production
    /// (`ORDERFLOW_ENV=production`), where the console is served over HTTPS;
    /// development serves plain HTTP on localhost, where a browser would
    /// drop a `Secure` cookie.
    pub secure_cookies: bool,
}
