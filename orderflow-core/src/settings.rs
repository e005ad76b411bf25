//! Configuration from the environment. Every service reads the same names;
//! each uses the parts it needs.

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::{bail, Context};

/// The development JWT secret. Refused when `ORDERFLOW_ENV=production`.
pub const DEV_JWT_SECRET: &str = "orderflow-dev-secret-change-me";
/// Longest `ORDERFLOW_JWT_TTL_SECONDS`: a year.
/// JetStream's own ceiling on a stream's replicas.
pub const MAX_STREAM_REPLICAS: usize = 5;

pub const MAX_JWT_TTL_SECONDS: u64 = 365 * 24 * 3600;
/// Longest `ORDERFLOW_BATCH_LINGER_MS`: a decision never waits longer than
/// this for company.
pub const MAX_BATCH_LINGER_MS: u64 = 100;
/// Longest `ORDERFLOW_PUBLISH_TIMEOUT_MS`: five minutes.
pub const MAX_PUBLISH_TIMEOUT_MS: u64 = 5 * 60 * 1000;
/// Longest `ORDERFLOW_RECONCILE_INTERVAL_SECONDS`: a day.
pub const MAX_RECONCILE_INTERVAL_SECONDS: u64 = 24 * 3600;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for containers and log shippers.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

/// All settings, parsed and checked.
#[derive(Clone)]
pub struct Settings {
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `NATS_URL`.
    pub nats_url: String,
    /// `ORDERFLOW_HTTP_ADDR`: where ingress-api listens.
    pub http_addr: SocketAddr,
    /// `ORDERFLOW_METRICS_ADDR`: where the processor and notifier serve
    /// `/metrics` and `/healthz`; each service has its own default.
    pub metrics_addr: Option<SocketAddr>,
    /// `ORDERFLOW_PARTITIONS`: how many partitions the ORDERS stream is split
    /// into. Every service must agree on it.
    pub partitions: u16,
    /// `ORDERFLOW_NAMESPACE`: a prefix for stream and subject names, so several
    /// deployments (or tests) can share one NATS server. Empty by default.
    pub namespace: String,
    /// `ORDERFLOW_JWT_SECRET`.
    pub jwt_secret: String,
    /// `ORDERFLOW_JWT_TTL_SECONDS`: how long an access token lives. 15
    /// minutes by default: a token cannot be withdrawn from whoever copied
    /// it, only revoked for its user, so a short life bounds a leak; clients
    /// log in again, which is cheap for them.
    pub jwt_ttl: Duration,
    /// `ORDERFLOW_RATE_LIMIT_PER_CLIENT`: requests a second one client (a
    /// user, or an address without a token) may make to ingress-api; 0 for
    /// no limit. 50 by default, with bursts of twice that: a person behind a
    /// browser or an integration makes a few requests a second, a page may
    /// fire a dozen at once, and 50 a second still leaves a single abusive
    /// client a small share of one replica (which takes thousands).
    pub rate_limit_per_client: u32,
    /// `ORDERFLOW_MAX_CONNECTIONS`: most connections ingress-api holds open at
    /// once; further clients wait in the accept queue. 4096 by default, well
    /// inside the usual limit of open files, so a flood of connections cannot
    /// take the descriptors the database and broker connections need.
    pub max_connections: usize,
    /// `ORDERFLOW_STREAM_REPLICAS`: JetStream replicas of each stream, 1 on
    /// a single nats-server, 3 on a three-node cluster (an acknowledged
    /// message is then on a majority of nodes). Applies when a stream is
    /// created; an existing stream keeps its replicas until edited.
    pub stream_replicas: usize,
    /// `ORDERFLOW_ADMIN_EMAIL` and `ORDERFLOW_ADMIN_PASSWORD`: the admin
    /// created (or whose password is reset) at start when both are set.
    pub admin: Option<(String, String)>,
    /// `ORDERFLOW_BATCH_MAX`: most orders the processor decides in one transaction.
    pub batch_max: usize,
    /// `ORDERFLOW_BATCH_LINGER_MS`: how long the processor waits for more
    /// orders when a batch it pulls is not full (0: never waits).
    pub batch_linger: Duration,
    /// `ORDERFLOW_PUBLISH_TIMEOUT_MS`: how long ingress waits for JetStream to
    /// acknowledge an order before answering 503.
    pub publish_timeout: Duration,
    /// `ORDERFLOW_ORDERS_MAX_MSGS`: the ORDERS stream's message limit; when it
    /// is full new orders are refused with 503 rather than old ones dropped.
    pub orders_max_msgs: i64,
    /// `ORDERFLOW_ORDERS_MAX_BYTES`: the ORDERS stream's size limit.
    pub orders_max_bytes: i64,
    /// `ORDERFLOW_EVENTS_MAX_BYTES`: the EVENTS stream's size limit; beyond
    /// it the oldest events go first.
    pub events_max_bytes: i64,
    /// `ORDERFLOW_RECONCILE_INTERVAL_SECONDS`: how often the processor proves
    /// stock against the ledger for the drift metric.
    pub reconcile_interval: Duration,
    /// `ORDERFLOW_LOG_FORMAT`: `json` (default) or `pretty`.
    pub log_format: LogFormat,
    /// `ORDERFLOW_ENV`: `production` refuses development defaults.
    pub production: bool,
}

/// Written without its secrets, so a `{:?}` in a log line or a panic message
/// never shows the JWT secret, the admin password or a database password.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &without_password(&self.database_url))
            .field("nats_url", &without_password(&self.nats_url))
            .field("http_addr", &self.http_addr)
            .field("metrics_addr", &self.metrics_addr)
            .field("partitions", &self.partitions)
            .field("namespace", &self.namespace)
            .field("jwt_secret", &REDACTED)
            .field("jwt_ttl", &self.jwt_ttl)
            .field("rate_limit_per_client", &self.rate_limit_per_client)
            .field("max_connections", &self.max_connections)
            .field("stream_replicas", &self.stream_replicas)
            .field(
                "admin",
                &self.admin.as_ref().map(|(email, _)| (email, REDACTED)),
            )
            .field("batch_max", &self.batch_max)
            .field("batch_linger", &self.batch_linger)
            .field("publish_timeout", &self.publish_timeout)
            .field("orders_max_msgs", &self.orders_max_msgs)
            .field("orders_max_bytes", &self.orders_max_bytes)
            .field("events_max_bytes", &self.events_max_bytes)
            .field("reconcile_interval", &self.reconcile_interval)
            .field("log_format", &self.log_format)
            .field("production", &self.production)
            .finish()
    }
}

const REDACTED: &str = "<redacted>";

/// `url` with the password of its user info, if any, replaced.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:{REDACTED}{}", &rest[at..]),
        None => url.to_owned(),
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process
    /// environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str, default: &str| -> String {
            lookup(name)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let production = get("ORDERFLOW_ENV", "development") == "production";
        let jwt_secret = get("ORDERFLOW_JWT_SECRET", DEV_JWT_SECRET);
        if production && jwt_secret == DEV_JWT_SECRET {
            bail!("ORDERFLOW_JWT_SECRET must be set when ORDERFLOW_ENV=production");
        }
        if jwt_secret.len() < 16 {
            bail!("ORDERFLOW_JWT_SECRET must be at least 16 bytes long");
        }
        let partitions: u16 = parse(&get("ORDERFLOW_PARTITIONS", "8"), "ORDERFLOW_PARTITIONS")?;
        if !(1..=1024).contains(&partitions) {
            bail!("ORDERFLOW_PARTITIONS must be between 1 and 1024, got {partitions}");
        }
        let batch_max: usize = parse(&get("ORDERFLOW_BATCH_MAX", "512"), "ORDERFLOW_BATCH_MAX")?;
        if !(1..=10_000).contains(&batch_max) {
            bail!("ORDERFLOW_BATCH_MAX must be between 1 and 10000, got {batch_max}");
        }
        let admin = match (
            lookup("ORDERFLOW_ADMIN_EMAIL"),
            lookup("ORDERFLOW_ADMIN_PASSWORD"),
        ) {
            (Some(email), Some(password)) if !email.is_empty() && !password.is_empty() => {
                Some((email, password))
            }
            _ => None,
        };
        let max_connections: usize = parse(
            &get("ORDERFLOW_MAX_CONNECTIONS", "4096"),
            "ORDERFLOW_MAX_CONNECTIONS",
        )?;
        if max_connections == 0 {
            bail!("ORDERFLOW_MAX_CONNECTIONS must be at least 1");
        }
        let stream_replicas = parse_within(
            &get("ORDERFLOW_STREAM_REPLICAS", "1"),
            "ORDERFLOW_STREAM_REPLICAS",
            1..=MAX_STREAM_REPLICAS,
        )?;
        let log_format = match get("ORDERFLOW_LOG_FORMAT", "json").as_str() {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => bail!("ORDERFLOW_LOG_FORMAT must be json or pretty, got {other:?}"),
        };
        Ok(Self {
            database_url: get(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/orderflow",
            ),
            nats_url: get("NATS_URL", "nats://127.0.0.1:4222"),
            http_addr: parse(
                &get("ORDERFLOW_HTTP_ADDR", "127.0.0.1:8080"),
                "ORDERFLOW_HTTP_ADDR",
            )?,
            metrics_addr: lookup("ORDERFLOW_METRICS_ADDR")
                .filter(|v| !v.is_empty())
                .map(|v| parse(&v, "ORDERFLOW_METRICS_ADDR"))
                .transpose()?,
            partitions,
            namespace: get("ORDERFLOW_NAMESPACE", ""),
            jwt_secret,
            // Bounded so that expiry times and deadlines computed from these
            // never overflow, and so a typo cannot make a token immortal.
            jwt_ttl: Duration::from_secs(parse_within(
                &get("ORDERFLOW_JWT_TTL_SECONDS", "900"),
                "ORDERFLOW_JWT_TTL_SECONDS",
                1..=MAX_JWT_TTL_SECONDS,
            )?),
            admin,
            rate_limit_per_client: parse(
                &get("ORDERFLOW_RATE_LIMIT_PER_CLIENT", "50"),
                "ORDERFLOW_RATE_LIMIT_PER_CLIENT",
            )?,
            max_connections,
            stream_replicas,
            batch_max,
            batch_linger: Duration::from_millis(parse_within(
                &get("ORDERFLOW_BATCH_LINGER_MS", "10"),
                "ORDERFLOW_BATCH_LINGER_MS",
                0..=MAX_BATCH_LINGER_MS,
            )?),
            publish_timeout: Duration::from_millis(parse_within(
                &get("ORDERFLOW_PUBLISH_TIMEOUT_MS", "2000"),
                "ORDERFLOW_PUBLISH_TIMEOUT_MS",
                1..=MAX_PUBLISH_TIMEOUT_MS,
            )?),
            // JetStream reads a negative limit as "unlimited", which would
            // drop the refusal of new orders when the stream is full.
            orders_max_msgs: parse_within(
                &get("ORDERFLOW_ORDERS_MAX_MSGS", "1000000"),
                "ORDERFLOW_ORDERS_MAX_MSGS",
                1..=i64::MAX,
            )?,
            orders_max_bytes: parse_within(
                &get("ORDERFLOW_ORDERS_MAX_BYTES", "1073741824"),
                "ORDERFLOW_ORDERS_MAX_BYTES",
                1..=i64::MAX,
            )?,
            // Without a size limit the stream keeps a week of events however
            // fast they come: at thousands of orders a second that is
            // terabytes, and a full disk stops JetStream for orders too.
            events_max_bytes: parse_within(
                &get("ORDERFLOW_EVENTS_MAX_BYTES", "10737418240"),
                "ORDERFLOW_EVENTS_MAX_BYTES",
                1..=i64::MAX,
            )?,
            reconcile_interval: Duration::from_secs(
                parse_within::<u64>(
                    &get("ORDERFLOW_RECONCILE_INTERVAL_SECONDS", "60"),
                    "ORDERFLOW_RECONCILE_INTERVAL_SECONDS",
                    0..=MAX_RECONCILE_INTERVAL_SECONDS,
                )?
                .max(1),
            ),
            log_format,
            production,
        })
    }
}

fn parse<T>(raw: &str, name: &str) -> anyhow::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    raw.parse()
        .with_context(|| format!("{name} is not valid: {raw:?}"))
}

/// Parses a number and refuses it outside `range`, naming the variable.
fn parse_within<T>(raw: &str, name: &str, range: RangeInclusive<T>) -> anyhow::Result<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let value: T = parse(raw, name)?;
    if !range.contains(&value) {
        bail!(
            "{name} must be between {} and {}, got {value}",
            range.start(),
            range.end()
        );
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let s = settings(&[
            ("ORDERFLOW_JWT_SECRET", "a-jwt-secret-of-some-length"),
            ("ORDERFLOW_ADMIN_EMAIL", "root@example.com"),
            ("ORDERFLOW_ADMIN_PASSWORD", "admin-password-123"),
            (
                "DATABASE_URL",
                "postgres://app:db-password-456@db:5432/orderflow?sslmode=require",
            ),
            ("NATS_URL", "nats://nats-user:nats-password-789@nats:4222"),
        ])
        .unwrap();
        let debug = format!("{s:?}");
        for secret in [
            "a-jwt-secret-of-some-length",
            "admin-password-123",
            "db-password-456",
            "nats-password-789",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        for shown in [
            "root@example.com",
            "postgres://app:<redacted>@db:5432/orderflow?sslmode=require",
        ] {
            assert!(debug.contains(shown), "{shown} missing from {debug}");
        }
    }

    #[test]
    fn stream_replicas_default_to_one_and_are_bounded() {
        assert_eq!(settings(&[]).unwrap().stream_replicas, 1);
        assert_eq!(
            settings(&[("ORDERFLOW_STREAM_REPLICAS", "3")])
                .unwrap()
                .stream_replicas,
            3
        );
        for bad in ["0", "6", "three"] {
            let err = settings(&[("ORDERFLOW_STREAM_REPLICAS", bad)]).unwrap_err();
            assert!(
                err.to_string().contains("ORDERFLOW_STREAM_REPLICAS"),
                "{err}"
            );
        }
    }

    #[test]
    fn batch_linger_defaults_to_ten_milliseconds_and_is_bounded() {
        assert_eq!(
            settings(&[]).unwrap().batch_linger,
            Duration::from_millis(10)
        );
        let off = settings(&[("ORDERFLOW_BATCH_LINGER_MS", "0")]).unwrap();
        assert_eq!(off.batch_linger, Duration::ZERO);
        for bad in ["101", "-1", "soon"] {
            let err = settings(&[("ORDERFLOW_BATCH_LINGER_MS", bad)]).unwrap_err();
            assert!(
                err.to_string().contains("ORDERFLOW_BATCH_LINGER_MS"),
                "{err}"
            );
        }
    }

    #[test]
    fn defaults_suit_a_development_machine() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.partitions, 8);
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.jwt_secret, DEV_JWT_SECRET);
        assert!(s.admin.is_none());
        assert_eq!(s.jwt_ttl, Duration::from_secs(900));
        assert_eq!(s.rate_limit_per_client, 50);
        assert_eq!(s.max_connections, 4096);
    }

    #[test]
    fn a_rate_limit_of_zero_means_none_and_connections_need_at_least_one() {
        let s = settings(&[("ORDERFLOW_RATE_LIMIT_PER_CLIENT", "0")]).unwrap();
        assert_eq!(s.rate_limit_per_client, 0);
        let err = settings(&[("ORDERFLOW_RATE_LIMIT_PER_CLIENT", "-1")]).unwrap_err();
        assert!(err.to_string().contains("ORDERFLOW_RATE_LIMIT_PER_CLIENT"));
        let err = settings(&[("ORDERFLOW_MAX_CONNECTIONS", "0")]).unwrap_err();
        assert!(err.to_string().contains("ORDERFLOW_MAX_CONNECTIONS"));
    }

    #[test]
    fn production_refuses_the_development_jwt_secret() {
        let err = settings(&[("ORDERFLOW_ENV", "production")]).unwrap_err();
        assert!(err.to_string().contains("ORDERFLOW_JWT_SECRET"));
        assert!(settings(&[
            ("ORDERFLOW_ENV", "production"),
            ("ORDERFLOW_JWT_SECRET", "a-real-secret-of-enough-length")
        ])
        .is_ok());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = settings(&[("ORDERFLOW_PARTITIONS", "0")]).unwrap_err();
        assert!(err.to_string().contains("ORDERFLOW_PARTITIONS"));
        let err = settings(&[("ORDERFLOW_HTTP_ADDR", "nowhere")]).unwrap_err();
        assert!(err.to_string().contains("ORDERFLOW_HTTP_ADDR"));
    }
}
