//! Dead letters: order commands the processor gave up on, kept in their own
//! stream for an admin to read and replay by hand.
//!
//! A dead letter's body is the original message's payload, byte for byte, so
//! replaying one is publishing that body again on the original subject. What
//! happened to it travels in headers: the original subject and stream
//! sequence, the attempts, the kind of reason and the reason, and when.

use std::time::Duration;

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};

/// How many times the processor tries to commit a command that fails with a
/// non-transient database error before it dead-letters the command. Errors
/// that pass (a lost connection, a serialization failure, a deadlock) are
/// retried for as long as they last and never count.
pub const MAX_ATTEMPTS: u32 = 5;

/// How long the dead-letter stream keeps a dead letter: long enough for
/// someone to notice, read and replay it.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The most bytes the dead-letter stream keeps; beyond it the oldest dead
/// letters go first. A flood of bad commands then cannot fill the broker's
/// disk.
pub const MAX_BYTES: i64 = 1 << 30;

/// How long the dead-letter stream remembers message ids. A processor that
/// crashed between dead-lettering a command and terminating it meets the
/// command again at its next takeover, which may come much later than the
/// ORDERS stream's two minutes; dead letters are rare, so a day costs little.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The headers of a dead letter.
pub mod header {
    pub const SUBJECT: &str = "Orderflow-Dead-Subject";
    pub const STREAM_SEQUENCE: &str = "Orderflow-Dead-Stream-Sequence";
    pub const ATTEMPTS: &str = "Orderflow-Dead-Attempts";
    pub const REASON_KIND: &str = "Orderflow-Dead-Reason-Kind";
    pub const REASON: &str = "Orderflow-Dead-Reason";
    pub const AT: &str = "Orderflow-Dead-At";
}

/// Why a command was given up on, as a metric label and in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonKind {
    /// Not an order command at all: it can never succeed.
    Undecodable,
    /// Its commit failed with the same kind of database error every time
    /// (invalid data, a constraint), [`MAX_ATTEMPTS`] times.
    Database,
}

impl ReasonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonKind::Undecodable => "undecodable",
            ReasonKind::Database => "database",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "undecodable" => Some(ReasonKind::Undecodable),
            "database" => Some(ReasonKind::Database),
            _ => None,
        }
    }
}

/// What is known about a dead-lettered command besides its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The subject the command was queued on.
    pub subject: String,
    /// Its sequence in the ORDERS stream.
    pub stream_seq: u64,
    /// How many times its commit was tried; 0 for an undecodable command.
    pub attempts: u32,
    pub reason_kind: ReasonKind,
    /// The error, in one line.
    pub reason: String,
    pub dead_lettered_at: DateTime<Utc>,
}

impl DeadLetter {
    /// The message id of the dead letter of the command at `stream_seq` in
    /// `orders_stream`: the same command dead-lettered twice is stored once.
    pub fn message_id(orders_stream: &str, stream_seq: u64) -> String {
        format!("{orders_stream}:{stream_seq}")
    }

    pub fn to_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::SUBJECT, self.subject.as_str());
        headers.insert(
            header::STREAM_SEQUENCE,
            self.stream_seq.to_string().as_str(),
        );
        headers.insert(header::ATTEMPTS, self.attempts.to_string().as_str());
        headers.insert(header::REASON_KIND, self.reason_kind.as_str());
        headers.insert(header::REASON, one_line(&self.reason).as_str());
        headers.insert(
            header::AT,
            self.dead_lettered_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .as_str(),
        );
        headers
    }

    /// Reads the headers back; `None` when one is missing or malformed.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let get = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
        Some(Self {
            subject: get(header::SUBJECT)?,
            stream_seq: get(header::STREAM_SEQUENCE)?.parse().ok()?,
            attempts: get(header::ATTEMPTS)?.parse().ok()?,
            reason_kind: ReasonKind::parse(&get(header::REASON_KIND)?)?,
            reason: get(header::REASON)?,
            dead_lettered_at: DateTime::parse_from_rfc3339(&get(header::AT)?)
                .ok()?
                .with_timezone(&Utc),
        })
    }
}

/// A header value cannot hold line breaks; a database error often does.
/// Longer than a header needs to be, the rest is cut.
fn one_line(text: &str) -> String {
    const MAX_REASON_CHARS: usize = 1000;
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_survives_its_headers_and_its_reason_fits_on_one_line() {
        let letter = DeadLetter {
            subject: "t1.orders.p3.abc".into(),
            stream_seq: 42,
            attempts: MAX_ATTEMPTS,
            reason_kind: ReasonKind::Database,
            reason: "invalid byte sequence\r\nfor encoding".into(),
            dead_lettered_at: "2026-01-02T03:04:05.123456Z".parse().unwrap(),
        };
        let back = DeadLetter::from_headers(&letter.to_headers()).unwrap();
        assert_eq!(back.reason, "invalid byte sequence  for encoding");
        assert_eq!(
            back,
            DeadLetter {
                reason: back.reason.clone(),
                ..letter
            }
        );
        assert_eq!(DeadLetter::message_id("ORDERS", 42), "ORDERS:42");
    }
}
