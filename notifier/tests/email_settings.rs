//! The notifier reads its SMTP settings from the environment at start and
//! refuses to start on a bad one, rather than failing on the first alert.
//! A test binary of its own: it sets process environment variables.

use std::time::Duration;

use testkit::{TestDatabase, TestNamespace};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_notifier_with_an_smtp_host_but_no_sender_refuses_to_start() {
    let db = TestDatabase::create().await.unwrap();
    let ns = TestNamespace::new();
    let settings = testkit::settings(&db, &ns, &[]);
    std::env::set_var("ORDERFLOW_SMTP_HOST", "127.0.0.1");
    std::env::remove_var("ORDERFLOW_SMTP_FROM");

    let run = notifier::run(settings, CancellationToken::new());
    let error = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("it fails at once, without waiting for the database or broker")
        .expect_err("a host without a sender is refused");
    assert!(
        format!("{error:#}").contains("ORDERFLOW_SMTP_FROM"),
        "{error:#}"
    );
}
