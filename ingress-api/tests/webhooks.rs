//! The webhook API: validation, permissions, masked secrets, pings and the
//! delivery history, dead letters and replays.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{problem, TestApp};
use uuid::Uuid;

const SECRET: &str = "a-secret-of-enough-length";

async fn create(app: &TestApp, token: &str, url: &str) -> Value {
    let response = app
        .post(
            token,
            "/webhooks",
            json!({"url": url, "events": ["order.confirmed", "*"], "secret": SECRET}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

#[tokio::test]
async fn invalid_webhooks_are_refused_naming_each_field() {
    let app = TestApp::start_with(&[], false).await;
    let manager = app.user_with_role("manager").await;
    let body = problem(
        app.post(
            &manager,
            "/webhooks",
            json!({"url": "ftp://example.com", "events": [], "secret": "short"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["url", "events", "secret"]);

    let body = problem(
        app.post(
            &manager,
            "/webhooks",
            json!({"url": "https://example.com", "events": ["order.teleported"], "secret": SECRET}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "events[0]");
    let long = format!("https://example.com/{}", "a".repeat(2048));
    let body = problem(
        app.post(
            &manager,
            "/webhooks",
            json!({"url": long, "events": ["*"], "secret": SECRET}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["limit"], 2048);
}

#[tokio::test]
async fn only_managers_manage_webhooks_and_only_admins_see_and_replay_dead_letters() {
    let app = TestApp::start_with(&[], false).await;
    let manager = app.user_with_role("manager").await;
    let hook = create(&app, &manager, "http://127.0.0.1:9/hook").await;
    let id = hook["id"].as_str().unwrap();
    for role in ["customer", "staff"] {
        let token = app.user_with_role(role).await;
        let new = json!({"url": "https://example.com", "events": ["*"], "secret": SECRET});
        problem(
            app.post(&token, "/webhooks", new).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(app.get(&token, "/webhooks").await, StatusCode::FORBIDDEN).await;
        problem(
            app.post(&token, &format!("/webhooks/{id}/ping"), json!({}))
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    problem(
        app.get(&manager, "/webhooks/dead-letters").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.post(&manager, "/webhooks/deliveries/1/replay", json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let admin = app.admin_token().await;
    let dead = app.get(&admin, "/webhooks/dead-letters").await;
    assert_eq!(dead.status(), StatusCode::OK);
}

#[tokio::test]
async fn secrets_are_never_listed_and_a_webhook_can_be_changed_and_deleted() {
    let app = TestApp::start_with(&[], false).await;
    let manager = app.user_with_role("manager").await;
    let created = create(&app, &manager, "https://example.com/hook").await;
    assert_eq!(created["secret_hint"], "****ngth");
    assert_eq!(created["events"], json!(["order.confirmed", "*"]));
    let id = created["id"].as_str().unwrap();

    let listed = app.get(&manager, "/webhooks").await.text().await.unwrap();
    assert!(
        !listed.contains(SECRET),
        "the secret is not listed: {listed}"
    );
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["items"][0]["id"], id);

    let changed = app
        .patch(
            &manager,
            &format!("/webhooks/{id}"),
            json!({"active": false, "events": ["stock.low"]}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["active"], false);
    assert_eq!(changed["events"], json!(["stock.low"]));
    problem(
        app.patch(&manager, &format!("/webhooks/{id}"), json!({"secret": "x"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let delete = |path: String| app.http.delete(app.url(&path)).bearer_auth(&manager).send();
    assert_eq!(
        delete(format!("/webhooks/{id}")).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(format!("/webhooks/{id}")).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

/// A receiver that answers 200 to everything and counts the requests.
async fn receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test]
async fn a_ping_is_queued_delivered_and_visible_with_its_attempts() {
    let mut app = TestApp::start_with(&[], false).await;
    let manager = app.user_with_role("manager").await;
    let (url, count) = receiver().await;
    let hook = create(&app, &manager, &url).await;
    let id = hook["id"].as_str().unwrap().to_owned();

    let ping = app
        .post(&manager, &format!("/webhooks/{id}/ping"), json!({}))
        .await;
    assert_eq!(ping.status(), StatusCode::ACCEPTED);
    let ping: Value = ping.json().await.unwrap();
    let queued: Value = app
        .get(
            &manager,
            &format!("/webhooks/{id}/deliveries?state=pending"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queued["items"][0]["event_id"], ping["event_id"]);
    assert_eq!(queued["items"][0]["event_type"], "webhook.ping");

    app.start_notifier();
    let delivered = testkit::eventually(
        std::time::Duration::from_secs(10),
        "the ping to be delivered",
        || async {
            let page: Value = app
                .get(&manager, &format!("/webhooks/{id}/deliveries"))
                .await
                .json()
                .await
                .ok()?;
            (page["items"][0]["state"] == "delivered").then_some(page)
        },
    )
    .await;
    let item = &delivered["items"][0];
    assert_eq!(item["attempts"], 1);
    assert_eq!(item["attempt_log"][0]["status_code"], 200);
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);

    problem(
        app.post(
            &manager,
            &format!("/webhooks/{}/ping", Uuid::now_v7()),
            json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.get(&manager, &format!("/webhooks/{id}/deliveries?state=lost"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[tokio::test]
async fn an_admin_lists_dead_letters_and_replays_only_dead_ones() {
    let app = TestApp::start_with(&[], false).await;
    let manager = app.user_with_role("manager").await;
    let admin = app.admin_token().await;
    let hook = create(&app, &manager, "http://127.0.0.1:9/hook").await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let ping: Value = app
        .post(&manager, &format!("/webhooks/{id}/ping"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    let delivery = ping["delivery_id"].as_i64().unwrap();

    problem(
        app.post(
            &admin,
            &format!("/webhooks/deliveries/{delivery}/replay"),
            json!({}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    // What the dispatcher does after the last attempt.
    sqlx::query(
        "update webhook_deliveries set state = 'dead', attempts = 8, dead_at = now() where id = $1",
    )
    .bind(delivery)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let dead: Value = app
        .get(&admin, "/webhooks/dead-letters")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dead["items"][0]["id"], delivery);
    assert_eq!(dead["items"][0]["webhook_id"], id.as_str());

    let replay = app
        .post(
            &admin,
            &format!("/webhooks/deliveries/{delivery}/replay"),
            json!({}),
        )
        .await;
    assert_eq!(replay.status(), StatusCode::ACCEPTED);
    let (state, attempts): (String, i32) =
        sqlx::query_as("select state, attempts from webhook_deliveries where id = $1")
            .bind(delivery)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempts), ("pending", 0));
    problem(
        app.post(&admin, "/webhooks/deliveries/999999/replay", json!({}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}
