//! SMTP settings from the environment.
//!
//! Parsed by [`Config::from_lookup`], which takes the lookup as a closure so
//! tests exercise every rule without touching the process environment.

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;

/// The SMTP server's host name or address; unset means email is disabled.
pub const HOST_VAR: &str = "ORDERFLOW_SMTP_HOST";
/// The SMTP port; [`DEFAULT_PORT`] when unset.
pub const PORT_VAR: &str = "ORDERFLOW_SMTP_PORT";
/// The user to authenticate as; no authentication when unset.
pub const USERNAME_VAR: &str = "ORDERFLOW_SMTP_USERNAME";
/// The password for [`USERNAME_VAR`]; required with it, never logged.
pub const PASSWORD_VAR: &str = "ORDERFLOW_SMTP_PASSWORD";
/// The sender, `alerts@example.com` or `Orderflow <alerts@example.com>`.
pub const FROM_VAR: &str = "ORDERFLOW_SMTP_FROM";
/// `starttls` (the default), `required` or `none`; see [`TlsMode`].
pub const TLS_VAR: &str = "ORDERFLOW_SMTP_TLS";

/// The submission port, where servers offer STARTTLS.
pub const DEFAULT_PORT: u16 = 587;

/// How long one SMTP conversation may take. Below the notifier's 10 s
/// delivery timeout, so a slow server is reported with lettre's own reason
/// rather than the generic "no answer".
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(8);

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// `starttls`: upgrade with STARTTLS when the server offers it, else send
    /// in clear text. Works with any server; does not stop an attacker who
    /// strips the STARTTLS offer.
    Opportunistic,
    /// `required`: STARTTLS or nothing; the delivery fails when the server
    /// does not offer it or its certificate does not verify.
    Required,
    /// `none`: clear text only, for a relay on loopback or a trusted network.
    None,
}

impl TlsMode {
    /// The value of [`TLS_VAR`] that selects this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Opportunistic => "starttls",
            TlsMode::Required => "required",
            TlsMode::None => "none",
        }
    }
}

/// Where and how the email channel sends.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The SMTP server's host name or address.
    pub host: String,
    /// The SMTP server's port.
    pub port: u16,
    /// The user to authenticate as, if the server wants authentication.
    pub username: Option<String>,
    /// The password for `username`. Left out of `Debug`, so it never reaches
    /// a log line.
    pub password: Option<String>,
    /// The `From` of every message and the envelope sender.
    pub from: Mailbox,
    /// Whether to upgrade the connection with STARTTLS.
    pub tls: TlsMode,
    /// The longest one SMTP conversation may take.
    pub timeout: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from.to_string())
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why the SMTP settings are unusable. Every message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{FROM_VAR} must be set when {HOST_VAR} is set: it is the sender of every alert")]
    MissingFrom,
    #[error("{FROM_VAR} is not an email address or `Name <address>`: {value:?} ({reason})")]
    InvalidFrom { value: String, reason: String },
    #[error("{PORT_VAR} must be a port number from 1 to 65535, got {0:?}")]
    InvalidPort(String),
    #[error("{TLS_VAR} must be `starttls`, `required` or `none`, got {0:?}")]
    InvalidTls(String),
    #[error("{USERNAME_VAR} and {PASSWORD_VAR} must be set together")]
    IncompleteCredentials,
}

impl Config {
    /// Reads the settings from the process environment. `Ok(None)` when
    /// [`HOST_VAR`] is unset or empty: email is then disabled.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, which answers a variable's value.
    /// An empty value counts as unset, as it does for `docker compose`
    /// files that list a variable without giving it a value.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let Some(host) = get(HOST_VAR) else {
            return Ok(None);
        };
        let port = match get(PORT_VAR) {
            None => DEFAULT_PORT,
            Some(raw) => match raw.trim().parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err(ConfigError::InvalidPort(raw)),
            },
        };
        let from = get(FROM_VAR).ok_or(ConfigError::MissingFrom)?;
        let from = from
            .trim()
            .parse::<Mailbox>()
            .map_err(|err| ConfigError::InvalidFrom {
                value: from.clone(),
                reason: err.to_string(),
            })?;
        let tls = match get(TLS_VAR).map(|v| v.trim().to_ascii_lowercase()) {
            None => TlsMode::Opportunistic,
            Some(v) if v == "starttls" => TlsMode::Opportunistic,
            Some(v) if v == "required" => TlsMode::Required,
            Some(v) if v == "none" => TlsMode::None,
            Some(_) => return Err(ConfigError::InvalidTls(lookup(TLS_VAR).unwrap_or_default())),
        };
        // Passwords may legitimately have surrounding spaces; take them as given.
        let username = get(USERNAME_VAR);
        let password = lookup(PASSWORD_VAR).filter(|p| !p.is_empty());
        if username.is_some() != password.is_some() {
            return Err(ConfigError::IncompleteCredentials);
        }

        Ok(Some(Config {
            host: host.trim().to_owned(),
            port,
            username,
            password,
            from,
            tls,
            timeout: DEFAULT_TIMEOUT,
        }))
    }
}
