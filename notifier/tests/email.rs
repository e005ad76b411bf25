//! The email channel against a real PostgreSQL, a real JetStream and a real
//! SMTP server on loopback that each test starts: who gets an alert, what it
//! says, that a redelivered event sends nothing more, and what a refusal
//! leaves behind. Also the `ORDERFLOW_SMTP_*` parsing rules.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notifier::channel::Channels;
use notifier::deliveries::RetryPolicy;
use notifier::email::{config, Config, ConfigError, EmailChannel, TlsMode};
use notifier::Options;
use support::{stock_low, stock_recovered, Harness, WAIT};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

const FROM: &str = "Orderflow Alerts <alerts@orderflow.test>";

// ---------------------------------------------------------------------------
// Alerts through a running notifier
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_stock_low_event_sends_one_message_to_active_managers_and_admins_only() {
    let h = Harness::new().await;
    add_user(&h, "admin@orderflow.test", "admin", true).await;
    add_user(&h, "manager@orderflow.test", "manager", true).await;
    add_user(&h, "former-manager@orderflow.test", "manager", false).await;
    add_user(&h, "staff@orderflow.test", "staff", true).await;
    add_user(&h, "customer@orderflow.test", "customer", true).await;
    let smtp = SmtpServer::start(Behaviour::default()).await;
    let notifier = h.start(options(&h, &smtp));

    let low = stock_low("SKU-1", 3, 5);
    h.publish(&low, &low.event_id.to_string()).await;
    let (outcome, detail) = email_outcome(&h, low.event_id).await;
    notifier.stop().await;

    assert_eq!(outcome, "delivered", "{detail:?}");
    let messages = smtp.received();
    assert_eq!(messages.len(), 1, "one message for everyone: {messages:#?}");
    let message = &messages[0];
    assert_eq!(message.sender, "alerts@orderflow.test");
    assert_eq!(
        message.recipients,
        ["admin@orderflow.test", "manager@orderflow.test"]
    );
    assert_eq!(
        message.header("Subject").as_deref(),
        Some("[orderflow] Low stock: SKU-1 (3 left, threshold 5)")
    );
    assert_eq!(
        message.header("Message-ID"),
        Some(format!("<{}@orderflow>", low.event_id))
    );
    assert_eq!(
        message.header("From").as_deref(),
        Some("\"Orderflow Alerts\" <alerts@orderflow.test>")
    );
    // Recipients travel in the envelope only: no one sees the others.
    assert_eq!(message.header("Bcc"), None);
    assert!(!message.data.contains("manager@orderflow.test"));
    for fact in [
        "SKU-1",
        "Available:  3",
        "Threshold:  5",
        &low.event_id.to_string(),
    ] {
        assert!(
            message.data.contains(fact),
            "the body says {fact:?}:\n{}",
            message.data
        );
    }
    // The channel ran with the default opportunistic TLS and this server
    // offers no STARTTLS: the message went in clear text rather than failing.
}

#[tokio::test]
async fn the_same_event_delivered_twice_through_nats_sends_one_message() {
    let h = Harness::new().await;
    add_user(&h, "manager@orderflow.test", "manager", true).await;
    let smtp = SmtpServer::start(Behaviour::default()).await;
    let notifier = h.start(options(&h, &smtp));

    let low = stock_low("SKU-1", 3, 5);
    let id = low.event_id;
    let first = h.publish(&low, &format!("{id}-first")).await;
    assert_eq!(email_outcome(&h, id).await.0, "delivered");

    // A second copy under another JetStream message id: the stream keeps it,
    // so only the notifier's inbox stands between it and a second email.
    let second = h.publish(&low, &format!("{id}-second")).await;
    assert!(second > first);
    h.wait_until_settled(second).await;
    // Stopping waits for the batch in flight, deliveries included, so any
    // second send would have reached the server by now.
    notifier.stop().await;

    assert_eq!(h.processed(id).await, 1);
    let messages = smtp.received();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        messages[0].header("Message-ID"),
        Some(format!("<{id}@orderflow>"))
    );
}

#[tokio::test]
async fn a_stock_recovered_event_sends_a_message_of_its_own() {
    let h = Harness::new().await;
    add_user(&h, "manager@orderflow.test", "manager", true).await;
    let smtp = SmtpServer::start(Behaviour::default()).await;
    let notifier = h.start(options(&h, &smtp));

    let low = stock_low("SKU-9", 1, 4);
    h.publish(&low, &low.event_id.to_string()).await;
    let recovered = stock_recovered("SKU-9", 12, 4);
    h.publish(&recovered, &recovered.event_id.to_string()).await;
    assert_eq!(email_outcome(&h, low.event_id).await.0, "delivered");
    assert_eq!(email_outcome(&h, recovered.event_id).await.0, "delivered");
    notifier.stop().await;

    let messages = smtp.received();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let subjects: Vec<_> = messages.iter().map(|m| m.header("Subject")).collect();
    assert!(subjects.contains(&Some(
        "[orderflow] Low stock: SKU-9 (1 left, threshold 4)".to_owned()
    )));
    assert!(subjects.contains(&Some(
        "[orderflow] Recovered: SKU-9 (12 available, threshold 4)".to_owned()
    )));
    let recovered_message = messages
        .iter()
        .find(|m| m.header("Message-ID") == Some(format!("<{}@orderflow>", recovered.event_id)))
        .expect("the recovered alert has the recovered event's Message-ID");
    assert!(recovered_message
        .data
        .contains(&recovered.event_id.to_string()));
}

#[tokio::test]
async fn without_any_manager_the_alert_counts_as_delivered_and_nothing_is_sent() {
    let h = Harness::new().await;
    add_user(&h, "staff@orderflow.test", "staff", true).await;
    let smtp = SmtpServer::start(Behaviour::default()).await;
    let notifier = h.start(options(&h, &smtp));

    let low = stock_low("SKU-1", 0, 2);
    h.publish(&low, &low.event_id.to_string()).await;
    let (outcome, _) = email_outcome(&h, low.event_id).await;
    notifier.stop().await;

    assert_eq!(outcome, "delivered");
    assert!(smtp.received().is_empty());
    assert_eq!(smtp.connections(), 0, "no recipient, no connection");
}

#[tokio::test]
async fn an_smtp_server_that_refuses_the_message_leaves_the_delivery_dead_without_retries() {
    let h = Harness::new().await;
    add_user(&h, "manager@orderflow.test", "manager", true).await;
    let smtp = SmtpServer::start(Behaviour {
        refuse_data: true,
        ..Behaviour::default()
    })
    .await;
    let notifier = h.start(options(&h, &smtp));

    let low = stock_low("SKU-1", 3, 5);
    h.publish(&low, &low.event_id.to_string()).await;
    let (outcome, detail) = email_outcome(&h, low.event_id).await;
    notifier.stop().await;

    // A refusal is permanent: dead at once, never retried.
    assert_eq!(outcome, "dead");
    let detail = detail.expect("a failure says why");
    assert!(
        detail.contains("554") && detail.contains("refused by test policy"),
        "the SMTP reason is kept: {detail}"
    );
    assert!(smtp.received().is_empty());
    // The email row is the event's only one: the log channel keeps none.
    assert_eq!(
        h.deliveries(low.event_id).await,
        vec![("email".to_owned(), "dead".to_owned())]
    );
}

#[tokio::test]
async fn required_tls_refuses_to_send_to_a_server_that_offers_no_starttls() {
    let h = Harness::new().await;
    add_user(&h, "manager@orderflow.test", "manager", true).await;
    let smtp = SmtpServer::start(Behaviour::default()).await;
    let mut config = smtp.config();
    config.tls = TlsMode::Required;
    let channel = EmailChannel::new(&config, h.db.pool.clone()).expect("build the channel");
    let notifier = h.start(Options {
        channels: Some(Channels::standard(&h.ns.naming).with(channel)),
        ..Options::default()
    });

    let low = stock_low("SKU-1", 3, 5);
    h.publish(&low, &low.event_id.to_string()).await;
    let (outcome, detail) = email_outcome(&h, low.event_id).await;
    notifier.stop().await;

    assert_eq!(outcome, "failed", "{detail:?}");
    assert!(smtp.received().is_empty(), "nothing went in clear text");
}

#[tokio::test]
async fn a_busy_smtp_server_gets_the_message_again_until_it_takes_it_once() {
    let h = Harness::new().await;
    add_user(&h, "manager@orderflow.test", "manager", true).await;
    let smtp = SmtpServer::start(Behaviour {
        defer_data: 2,
        ..Behaviour::default()
    })
    .await;
    let notifier = h.start(Options {
        retries: fast_retries(),
        ..options(&h, &smtp)
    });

    let low = stock_low("SKU-1", 3, 5);
    h.publish(&low, &low.event_id.to_string()).await;
    let attempts = testkit::eventually(WAIT, "the retried email to be delivered", || async {
        let (outcome, attempts): (String, i32) = sqlx::query_as(
            "select outcome, attempts from notification_deliveries
             where event_id = $1 and channel = 'email'",
        )
        .bind(low.event_id)
        .fetch_optional(&h.db.pool)
        .await
        .ok()??;
        (outcome == "delivered").then_some(attempts)
    })
    .await;
    notifier.stop().await;

    assert_eq!(
        attempts, 3,
        "two deferred attempts, then the one that went through"
    );
    assert_eq!(smtp.received().len(), 1, "one message in the end");
}

#[tokio::test]
async fn a_delivery_orphaned_by_a_crash_is_picked_up_and_delivered() {
    // The state a crash between the batch commit and the first attempt
    // leaves: a pending row whose grace has passed.
    let h = Harness::new().await;
    add_user(&h, "manager@orderflow.test", "manager", true).await;
    let smtp = SmtpServer::start(Behaviour::default()).await;
    let low = stock_low("SKU-9", 1, 5);
    sqlx::query(
        "insert into notification_deliveries (event_id, channel, outcome, payload, next_attempt_at)
         values ($1, 'email', 'pending', $2, now() - interval '1 second')",
    )
    .bind(low.event_id)
    .bind(serde_json::to_value(&low).unwrap())
    .execute(&h.db.pool)
    .await
    .unwrap();
    let notifier = h.start(Options {
        retries: fast_retries(),
        ..options(&h, &smtp)
    });
    let (outcome, _) = email_outcome(&h, low.event_id).await;
    notifier.stop().await;
    assert_eq!(outcome, "delivered");
    assert_eq!(smtp.received().len(), 1);
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(200),
        poll: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn credentials_are_withheld_from_a_server_that_offers_no_starttls() {
    let h = Harness::new().await;
    add_user(&h, "manager@orderflow.test", "manager", true).await;
    let smtp = SmtpServer::start(Behaviour {
        offer_auth: true,
        ..Behaviour::default()
    })
    .await;
    let mut config = smtp.config();
    config.username = Some("mailer".to_owned());
    config.password = Some("s3cret pass".to_owned());
    let channel = EmailChannel::new(&config, h.db.pool.clone()).expect("build the channel");
    let notifier = h.start(Options {
        channels: Some(Channels::standard(&h.ns.naming).with(channel)),
        ..Options::default()
    });

    let low = stock_low("SKU-1", 3, 5);
    h.publish(&low, &low.event_id.to_string()).await;
    let (outcome, _) = email_outcome(&h, low.event_id).await;
    notifier.stop().await;

    // With opportunistic STARTTLS it would have authenticated in clear
    // text and delivered; required STARTTLS refuses before AUTH.
    assert_eq!(outcome, "failed");
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn configured_credentials_are_presented_to_a_server_that_asks_for_them() {
    let h = Harness::new().await;
    add_user(&h, "manager@orderflow.test", "manager", true).await;
    let smtp = SmtpServer::start(Behaviour {
        offer_auth: true,
        ..Behaviour::default()
    })
    .await;
    let mut config = smtp.config();
    config.username = Some("mailer".to_owned());
    config.password = Some("s3cret pass".to_owned());
    // The test server offers no STARTTLS: only an explicit `none` lets
    // credentials go over a clear-text connection.
    config.tls = TlsMode::None;
    let channel = EmailChannel::new(&config, h.db.pool.clone()).expect("build the channel");
    let notifier = h.start(Options {
        channels: Some(Channels::standard(&h.ns.naming).with(channel)),
        ..Options::default()
    });

    let low = stock_low("SKU-1", 3, 5);
    h.publish(&low, &low.event_id.to_string()).await;
    let (outcome, detail) = email_outcome(&h, low.event_id).await;
    notifier.stop().await;

    assert_eq!(outcome, "delivered", "{detail:?}");
    let messages = smtp.received();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].credentials,
        Some(("mailer".to_owned(), "s3cret pass".to_owned()))
    );
}

// ---------------------------------------------------------------------------
// ORDERFLOW_SMTP_* parsing
// ---------------------------------------------------------------------------

fn parse(vars: &[(&str, &str)]) -> Result<Option<Config>, ConfigError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_lookup(|name| vars.get(name).cloned())
}

#[test]
fn email_is_disabled_when_no_smtp_host_is_set() {
    assert_eq!(parse(&[]), Ok(None));
    assert_eq!(parse(&[(config::HOST_VAR, "")]), Ok(None));
    // The other variables alone do not turn it on.
    assert_eq!(parse(&[(config::FROM_VAR, "a@b.test")]), Ok(None));
}

#[test]
fn a_host_and_a_sender_are_enough_and_the_rest_has_defaults() {
    let config = parse(&[
        ("ORDERFLOW_SMTP_HOST", "smtp.example.com"),
        ("ORDERFLOW_SMTP_FROM", "Orderflow <alerts@example.com>"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(config.host, "smtp.example.com");
    assert_eq!(config.port, 587);
    assert_eq!(config.tls, TlsMode::Opportunistic);
    assert_eq!(config.username, None);
    assert_eq!(config.password, None);
    assert_eq!(config.from.email.to_string(), "alerts@example.com");
    assert_eq!(config.from.name.as_deref(), Some("Orderflow"));
}

#[test]
fn every_smtp_setting_is_read_from_its_variable() {
    let config = parse(&[
        ("ORDERFLOW_SMTP_HOST", "mail.internal"),
        ("ORDERFLOW_SMTP_PORT", "2525"),
        ("ORDERFLOW_SMTP_USERNAME", "mailer"),
        ("ORDERFLOW_SMTP_PASSWORD", "hunter2"),
        ("ORDERFLOW_SMTP_FROM", "alerts@example.com"),
        ("ORDERFLOW_SMTP_TLS", "Required"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(config.port, 2525);
    assert_eq!(config.tls, TlsMode::Required);
    assert_eq!(config.username.as_deref(), Some("mailer"));
    assert_eq!(config.password.as_deref(), Some("hunter2"));

    let none = parse(&[
        ("ORDERFLOW_SMTP_HOST", "localhost"),
        ("ORDERFLOW_SMTP_FROM", "alerts@example.com"),
        ("ORDERFLOW_SMTP_TLS", "none"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(none.tls, TlsMode::None);
}

#[test]
fn a_host_without_a_sender_is_refused_naming_the_variable() {
    let err = parse(&[("ORDERFLOW_SMTP_HOST", "smtp.example.com")]).unwrap_err();
    assert_eq!(err, ConfigError::MissingFrom);
    assert!(err.to_string().contains("ORDERFLOW_SMTP_FROM"), "{err}");

    let err = parse(&[
        ("ORDERFLOW_SMTP_HOST", "smtp.example.com"),
        ("ORDERFLOW_SMTP_FROM", "not an address"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("ORDERFLOW_SMTP_FROM"), "{err}");
}

#[test]
fn a_bad_port_or_tls_mode_is_refused_naming_the_variable() {
    let base = [
        ("ORDERFLOW_SMTP_HOST", "smtp.example.com"),
        ("ORDERFLOW_SMTP_FROM", "alerts@example.com"),
    ];
    for port in ["0", "65536", "smtp", "-1"] {
        let err = parse(&[base[0], base[1], ("ORDERFLOW_SMTP_PORT", port)]).unwrap_err();
        assert_eq!(err, ConfigError::InvalidPort(port.to_owned()));
        assert!(err.to_string().contains("ORDERFLOW_SMTP_PORT"), "{err}");
    }
    let err = parse(&[base[0], base[1], ("ORDERFLOW_SMTP_TLS", "ssl")]).unwrap_err();
    assert_eq!(err, ConfigError::InvalidTls("ssl".to_owned()));
    assert!(err.to_string().contains("ORDERFLOW_SMTP_TLS"), "{err}");
}

#[test]
fn a_username_without_a_password_or_the_reverse_is_refused() {
    let base = [
        ("ORDERFLOW_SMTP_HOST", "smtp.example.com"),
        ("ORDERFLOW_SMTP_FROM", "alerts@example.com"),
    ];
    for half in [
        ("ORDERFLOW_SMTP_USERNAME", "mailer"),
        ("ORDERFLOW_SMTP_PASSWORD", "hunter2"),
    ] {
        let err = parse(&[base[0], base[1], half]).unwrap_err();
        assert_eq!(err, ConfigError::IncompleteCredentials);
        let message = err.to_string();
        assert!(
            message.contains("ORDERFLOW_SMTP_USERNAME")
                && message.contains("ORDERFLOW_SMTP_PASSWORD"),
            "{message}"
        );
        assert!(!message.contains("hunter2"));
    }
}

#[test]
fn the_password_never_shows_in_debug_output() {
    let config = parse(&[
        ("ORDERFLOW_SMTP_HOST", "smtp.example.com"),
        ("ORDERFLOW_SMTP_FROM", "alerts@example.com"),
        ("ORDERFLOW_SMTP_USERNAME", "mailer"),
        ("ORDERFLOW_SMTP_PASSWORD", "hunter2"),
    ])
    .unwrap()
    .unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("mailer"), "{shown}");
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The standard channels plus email through `smtp`.
fn options(h: &Harness, smtp: &SmtpServer) -> Options {
    let channel = EmailChannel::new(&smtp.config(), h.db.pool.clone()).expect("build the channel");
    Options {
        channels: Some(Channels::standard(&h.ns.naming).with(channel)),
        ..Options::default()
    }
}

async fn add_user(h: &Harness, email: &str, role: &str, active: bool) {
    sqlx::query(
        "insert into users (id, email, password_hash, role, active)
         values ($1, $2, 'not-a-hash', $3, $4)",
    )
    .bind(Uuid::now_v7())
    .bind(email)
    .bind(role)
    .bind(active)
    .execute(&h.db.pool)
    .await
    .expect("insert user");
}

/// Waits until the email delivery of `event_id` has an outcome; answers it
/// with its detail.
async fn email_outcome(h: &Harness, event_id: Uuid) -> (String, Option<String>) {
    testkit::eventually(
        WAIT,
        &format!("the email delivery of {event_id} to have an outcome"),
        || async {
            let row: Option<(String, Option<String>)> = sqlx::query_as(
                "select outcome, detail from notification_deliveries
                 where event_id = $1 and channel = 'email'",
            )
            .bind(event_id)
            .fetch_optional(&h.db.pool)
            .await
            .expect("read the email delivery");
            row.filter(|(outcome, _)| outcome != "pending")
        },
    )
    .await
}

// ---------------------------------------------------------------------------
// A real SMTP server on loopback: just enough RFC 5321 for one client.
// ---------------------------------------------------------------------------

/// One message the server accepted.
#[derive(Debug, Clone, Default)]
struct Received {
    /// The envelope sender (MAIL FROM).
    sender: String,
    /// The envelope recipients (RCPT TO), in order.
    recipients: Vec<String>,
    /// Headers and body as sent, dot-unstuffed, without the final dot.
    data: String,
    /// The (user, password) the client authenticated with, if it did.
    credentials: Option<(String, String)>,
}

impl Received {
    /// The value of the header `name`, unfolded.
    fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((key, rest)) = line.split_once(':') {
                if key.eq_ignore_ascii_case(name) {
                    value = Some(rest.trim_start().to_owned());
                }
            }
        }
        value
    }
}

/// How the server behaves.
#[derive(Debug, Clone, Copy, Default)]
struct Behaviour {
    /// Answer DATA with 554, as a server refusing by policy does.
    refuse_data: bool,
    /// Advertise `AUTH PLAIN LOGIN` and accept any credentials.
    offer_auth: bool,
    /// Answer this many DATA commands with 451 (try again later) before
    /// accepting, as a server under load does.
    defer_data: usize,
}

struct SmtpServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    connections: Arc<Mutex<usize>>,
    task: JoinHandle<()>,
}

impl SmtpServer {
    async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP server");
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let deferrals_left = Arc::new(AtomicUsize::new(behaviour.defer_data));
        let task = tokio::spawn({
            let (received, connections) = (received.clone(), connections.clone());
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    *connections.lock().unwrap() += 1;
                    let (received, deferrals_left) = (received.clone(), deferrals_left.clone());
                    tokio::spawn(async move {
                        // A client hanging up mid-conversation is its business.
                        let _ = converse(stream, behaviour, &received, &deferrals_left).await;
                    });
                }
            }
        });
        Self {
            addr,
            received,
            connections,
            task,
        }
    }

    /// Settings pointing at this server, with the default (opportunistic)
    /// TLS mode: the server offers no STARTTLS, so mail goes in clear text.
    fn config(&self) -> Config {
        Config::from_lookup(|name| match name {
            config::HOST_VAR => Some(self.addr.ip().to_string()),
            config::PORT_VAR => Some(self.addr.port().to_string()),
            config::FROM_VAR => Some(FROM.to_owned()),
            _ => None,
        })
        .expect("valid settings")
        .expect("email enabled")
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn converse(
    stream: TcpStream,
    behaviour: Behaviour,
    received: &Mutex<Vec<Received>>,
    deferrals_left: &AtomicUsize,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 smtp.test ESMTP ready\r\n").await?;
    let mut message = Received::default();
    let mut credentials = None;
    loop {
        let Some(line) = read_line(&mut reader).await? else {
            return Ok(());
        };
        let verb = line
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" if behaviour.offer_auth => {
                b"250-smtp.test\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 1048576\r\n"
            }
            "EHLO" => b"250-smtp.test\r\n250 SIZE 1048576\r\n",
            "HELO" => b"250 smtp.test\r\n",
            "AUTH" => {
                let mut parts = line.split(' ').skip(1);
                let mechanism = parts.next().unwrap_or_default().to_ascii_uppercase();
                let initial = parts.next().map(str::to_owned);
                credentials = match mechanism.as_str() {
                    "PLAIN" => {
                        let response = match initial {
                            Some(r) => r,
                            None => challenge(&mut reader, &mut write, "").await?,
                        };
                        let decoded = base64_decode(&response);
                        let mut fields = decoded.split('\0').skip(1);
                        Some((
                            fields.next().unwrap_or_default().to_owned(),
                            fields.next().unwrap_or_default().to_owned(),
                        ))
                    }
                    "LOGIN" => {
                        let user = match initial {
                            Some(r) => r,
                            None => challenge(&mut reader, &mut write, "VXNlcm5hbWU6").await?,
                        };
                        let password = challenge(&mut reader, &mut write, "UGFzc3dvcmQ6").await?;
                        Some((base64_decode(&user), base64_decode(&password)))
                    }
                    _ => None,
                };
                if credentials.is_some() {
                    b"235 2.7.0 authenticated\r\n"
                } else {
                    b"504 5.5.4 unrecognised mechanism\r\n"
                }
            }
            "MAIL" => {
                message = Received {
                    sender: angle_address(&line),
                    credentials: credentials.clone(),
                    ..Received::default()
                };
                b"250 2.1.0 ok\r\n"
            }
            "RCPT" => {
                message.recipients.push(angle_address(&line));
                b"250 2.1.5 ok\r\n"
            }
            "DATA" if behaviour.refuse_data => b"554 5.7.1 refused by test policy\r\n",
            "DATA"
                if deferrals_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok() =>
            {
                b"451 4.3.0 busy, try again later\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    let Some(line) = read_line(&mut reader).await? else {
                        return Ok(());
                    };
                    if line == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    data.push_str("\r\n");
                }
                message.data = data;
                received.lock().unwrap().push(std::mem::take(&mut message));
                b"250 2.0.0 queued\r\n"
            }
            "RSET" => {
                message = Received::default();
                b"250 2.0.0 ok\r\n"
            }
            "NOOP" => b"250 2.0.0 ok\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// One line without its CRLF; `None` at the end of the stream.
async fn read_line(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// Sends a 334 challenge and answers the client's response line.
async fn challenge(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    prompt: &str,
) -> std::io::Result<String> {
    write
        .write_all(format!("334 {prompt}\r\n").as_bytes())
        .await?;
    Ok(read_line(reader).await?.unwrap_or_default())
}

/// The address between `<` and `>` in `MAIL FROM:<a@b> SIZE=1`.
fn angle_address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_owned()
}

/// Standard base64, enough for SASL responses; invalid input decodes to junk
/// that the assertions then reject.
fn base64_decode(input: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in input.bytes().filter(|b| *b != b'=') {
        let Some(value) = ALPHABET.iter().position(|a| *a == byte) else {
            continue;
        };
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
