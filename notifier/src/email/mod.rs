//! The `email` channel: low-stock and recovered alerts to managers by SMTP.
//!
//! - [`config`]: the SMTP settings from `ORDERFLOW_SMTP_*`; email is off when
//!   `ORDERFLOW_SMTP_HOST` is unset.
//! - [`message`]: the subject, body and `Message-ID` of one alert.
//! - [`EmailChannel`]: the [`Channel`] that sends one message per event to
//!   every active manager and admin.
//!
//! Exactly once for people comes from the notifier, not from here: an event
//! is recorded with a `pending` delivery row before it is delivered, and a
//! redelivered event is dropped by the inbox, so `deliver` runs at most once
//! per event. The `Message-ID` derived from the event id is the second line
//! of defence, for mail systems that drop duplicates by it.

pub mod config;
pub mod message;

use futures::future::BoxFuture;
use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use orderflow_core::event::EventEnvelope;
use sqlx::PgPool;

use crate::channel::{Channel, DeliveryError};

pub use config::{Config, ConfigError, TlsMode};

/// The channel's name in `notification_deliveries` and metrics.
pub const CHANNEL_NAME: &str = "email";

/// The roles that receive alerts; an admin includes a manager's rights.
const RECIPIENT_ROLES: [&str; 2] = ["manager", "admin"];

/// Why the email channel could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("set up SMTP to {host}:{port}: {source}")]
pub struct SetupError {
    host: String,
    port: u16,
    #[source]
    source: lettre::transport::smtp::Error,
}

/// Sends low-stock and recovered alerts to every active manager and admin.
#[derive(Clone)]
pub struct EmailChannel {
    /// Opens one connection per message: alerts are rare, and an idle pooled
    /// connection would only be closed by the server in between.
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The sender of every message.
    from: Mailbox,
    /// Where the recipients are read, at delivery time, so a manager added or
    /// deactivated since the event is taken into account.
    pool: PgPool,
}

impl std::fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailChannel")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    /// A channel sending through the server `config` describes. Connects to
    /// nothing yet: the first alert opens the first connection.
    pub fn new(config: &Config, pool: PgPool) -> Result<Self, SetupError> {
        let setup_error = |source| SetupError {
            host: config.host.clone(),
            port: config.port,
            source,
        };
        // Credentials are never handed over a connection that may stay in
        // clear text: with them, `starttls` means STARTTLS is required, and
        // only an explicit `none` (a relay on a trusted network) sends them
        // unencrypted.
        let mode = match (config.tls, config.username.is_some()) {
            (TlsMode::Opportunistic, true) => TlsMode::Required,
            (mode, _) => mode,
        };
        let tls = match mode {
            TlsMode::None => Tls::None,
            TlsMode::Opportunistic => {
                Tls::Opportunistic(TlsParameters::new(config.host.clone()).map_err(setup_error)?)
            }
            TlsMode::Required => {
                Tls::Required(TlsParameters::new(config.host.clone()).map_err(setup_error)?)
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout));
        if let (Some(username), Some(password)) = (&config.username, &config.password) {
            if mode == TlsMode::None {
                tracing::warn!(
                    host = %config.host,
                    "SMTP credentials are sent in clear text (ORDERFLOW_SMTP_TLS=none)"
                );
            }
            builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
        }
        tracing::info!(
            host = %config.host,
            port = config.port,
            tls = mode.as_str(),
            from = %config.from,
            authenticated = config.username.is_some(),
            "email channel configured"
        );
        Ok(Self {
            transport: builder.build(),
            from: config.from.clone(),
            pool,
        })
    }

    /// The addresses of every active manager and admin, in a stable order.
    /// An address that does not parse is skipped with a warning rather than
    /// failing the alert for everyone else.
    async fn recipients(&self) -> Result<Vec<Mailbox>, sqlx::Error> {
        let emails: Vec<String> = sqlx::query_scalar(
            "select email from users where active and role = any($1) order by email",
        )
        .bind(&RECIPIENT_ROLES[..])
        .fetch_all(&self.pool)
        .await?;
        Ok(emails
            .into_iter()
            .filter_map(|email| match email.parse::<Mailbox>() {
                Ok(mailbox) => Some(mailbox),
                Err(err) => {
                    tracing::warn!(%email, error = %err, "skipping an alert recipient whose address does not parse");
                    None
                }
            })
            .collect())
    }

    async fn send(&self, event: &EventEnvelope) -> Result<(), DeliveryError> {
        let recipients = self
            .recipients()
            .await
            .map_err(|err| DeliveryError::Transient(format!("read the recipients: {err}")))?;
        if recipients.is_empty() {
            tracing::info!(
                event_id = %event.event_id,
                event_type = event.event.kind(),
                "no active manager or admin to email; nothing sent"
            );
            return Ok(());
        }
        let count = recipients.len();
        let Some(composed) = message::compose(event, &self.from, recipients) else {
            // `wants` lets only alerts through; anything else has nothing to say.
            return Ok(());
        };
        let message = composed
            .map_err(|err| DeliveryError::Permanent(format!("compose the message: {err}")))?;
        let envelope: Envelope = message.envelope().clone();
        let response = self
            .transport
            .send(message)
            .await
            .map_err(|err| classify(&err))?;
        tracing::info!(
            event_id = %event.event_id,
            event_type = event.event.kind(),
            recipients = count,
            envelope_from = ?envelope.from().map(|a| a.to_string()),
            response = %response.first_line().unwrap_or_default(),
            "alert emailed"
        );
        Ok(())
    }
}

/// A 5xx answer will be the same next time; everything else (4xx, network,
/// TLS handshake, timeout) may pass on a later attempt.
fn classify(err: &lettre::transport::smtp::Error) -> DeliveryError {
    let reason = format!("SMTP: {err}");
    if err.is_permanent() {
        DeliveryError::Permanent(reason)
    } else {
        DeliveryError::Transient(reason)
    }
}

impl Channel for EmailChannel {
    fn name(&self) -> &'static str {
        CHANNEL_NAME
    }

    /// Only threshold crossings: they fire once per crossing, so people get
    /// one message when stock runs low and one when it recovers, never one
    /// per order.
    fn wants(&self, event: &EventEnvelope) -> bool {
        message::crossing(&event.event).is_some()
    }

    fn deliver<'a>(&'a self, event: &'a EventEnvelope) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.send(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_core::event::{Event, StockChanged, StockThresholdCrossed};

    fn envelope(event: Event) -> EventEnvelope {
        EventEnvelope::new(event, chrono::Utc::now())
    }

    #[tokio::test]
    async fn the_email_channel_wants_threshold_crossings_only() {
        let config = Config::from_lookup(|name| match name {
            config::HOST_VAR => Some("127.0.0.1".into()),
            config::FROM_VAR => Some("alerts@example.com".into()),
            _ => None,
        })
        .unwrap()
        .unwrap();
        // A lazy pool connects to nothing until a query runs.
        let pool = PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
        let channel = EmailChannel::new(&config, pool).unwrap();
        let crossed = StockThresholdCrossed {
            sku: "A".into(),
            available: 1,
            threshold: 5,
        };
        assert!(channel.wants(&envelope(Event::StockLow(crossed.clone()))));
        assert!(channel.wants(&envelope(Event::StockRecovered(crossed))));
        assert!(!channel.wants(&envelope(Event::StockChanged(StockChanged {
            sku: "A".into(),
            on_hand: 1,
            reserved: 0,
            available: 1,
        }))));
    }
}
