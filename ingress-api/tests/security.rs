//! Authentication under attack: password guessing is throttled per email,
//! and every kind of forged, tampered or stale access token is refused.

mod support;

use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{problem, TestApp};
use uuid::Uuid;

const PASSWORD: &str = "the-right-password";

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn register(app: &TestApp) -> String {
    let email = format!("guess-{}@example.com", Uuid::new_v4().simple());
    let response = app
        .http
        .post(app.url("/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    email
}

/// Asserts a 429 problem with a `Retry-After` within the 15-minute window.
async fn throttled(response: reqwest::Response) {
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=900).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let body = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(
        body["detail"].as_str().unwrap().contains("5 failed logins"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_five_failed_logins_an_email_is_refused_even_with_its_password_until_the_window_passes(
) {
    let app = TestApp::start_with(&[], false).await;
    let email = register(&app).await;
    let other = register(&app).await;

    for _ in 0..5 {
        let response = login(&app, &email, "a-wrong-guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    throttled(login(&app, &email, "a-wrong-guess").await).await;
    throttled(login(&app, &email, PASSWORD).await).await;
    // The same email however it is written.
    throttled(login(&app, &format!("  {}", email.to_uppercase()), PASSWORD).await).await;

    // Another email is not affected, wrong or right.
    let response = login(&app, &other, "a-wrong-guess").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, &other, PASSWORD).await.status(), StatusCode::OK);

    // An email without an account is throttled alike, so a 429 does not
    // tell which accounts exist.
    let unknown = format!("nobody-{}@example.com", Uuid::new_v4().simple());
    for _ in 0..5 {
        let response = login(&app, &unknown, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    throttled(login(&app, &unknown, PASSWORD).await).await;

    // Once the window has passed the right password works again.
    sqlx::query(
        "update login_failures set window_started_at = now() - interval '15 minutes 1 second'
          where email = $1",
    )
    .bind(&email)
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(login(&app, &email, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_login_resets_the_count_of_failures() {
    let app = TestApp::start_with(&[], false).await;
    let email = register(&app).await;
    for _ in 0..2 {
        for _ in 0..4 {
            let response = login(&app, &email, "a-wrong-guess").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(login(&app, &email, PASSWORD).await.status(), StatusCode::OK);
    }
}

/// The claims ingress-api itself issues, for `user` as a customer, expiring
/// `exp_offset` seconds from now.
fn claims(user: Uuid, role: &str, exp_offset: i64) -> Value {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    json!({"sub": user, "role": role, "ver": 0, "iss": "orderflow",
           "iat": now - 10, "exp": now + exp_offset})
}

fn sign(algorithm: Algorithm, secret: &str, claims: &Value) -> String {
    encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tampered_expired_unsigned_and_hs512_tokens_are_refused_with_401() {
    let app = TestApp::start_with(&[], false).await;
    let (user, token) = app.customer().await;
    let secret = app.settings.jwt_secret.clone();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    // What the forgeries below differ from: the issued token, and one made
    // here the same way, are both honoured.
    assert_eq!(app.get(&token, "/orders").await.status(), StatusCode::OK);
    let crafted = sign(Algorithm::HS256, &secret, &claims(user, "customer", 600));
    assert_eq!(app.get(&crafted, "/orders").await.status(), StatusCode::OK);

    let parts: Vec<&str> = token.split('.').collect();
    let payload = String::from_utf8(engine.decode(parts[1]).unwrap()).unwrap();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(payload.replace("\"customer\"", "\"admin\"")),
        parts[2]
    );
    let unsigned = format!(
        "{}.{}.",
        engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(claims(user, "admin", 600).to_string())
    );
    let forgeries = [
        ("payload changed, signature kept", tampered),
        (
            "signed with another secret",
            sign(
                Algorithm::HS256,
                "another-secret-of-enough-length",
                &claims(user, "admin", 600),
            ),
        ),
        (
            "expired",
            sign(Algorithm::HS256, &secret, &claims(user, "customer", -60)),
        ),
        ("alg none", unsigned),
        (
            "HS512 with the right secret",
            sign(Algorithm::HS512, &secret, &claims(user, "customer", 600)),
        ),
    ];
    for (what, forged) in forgeries {
        for path in ["/orders", "/users"] {
            let response = app.get(&forged, path).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "a token {what} on {path}"
            );
            let body = problem(response, StatusCode::UNAUTHORIZED).await;
            assert_eq!(body["type"], "/problems/unauthorized", "{what}");
        }
    }
}
