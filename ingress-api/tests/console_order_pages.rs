//! The console's order and webhook pages: the orders list and an order's
//! page with its Fulfil and Cancel buttons, the webhooks page with its
//! register form and Ping buttons, a webhook's deliveries, and the dead
//! letters with their Replay buttons; over HTTP against a real database and
//! NATS, redirects not followed.

mod support;

use std::time::Duration;

use reqwest::header::{COOKIE, LOCATION};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use support::console::{cookie_value, csrf_in, set_cookie, text_after, Console};
use support::TestApp;
use testkit::eventually;
use uuid::Uuid;

/// The cookie that carries a notice across the redirect after an action.
const NOTICE_COOKIE: &str = "orderflow_notice";

/// Two decided orders of one unit of a product with one in stock: the first
/// confirmed, the second rejected. Returns (confirmed, rejected).
async fn confirmed_and_rejected(app: &TestApp, sku: &str) -> (Uuid, Uuid) {
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, sku, 1, 0).await;
    let (_, ann) = app.customer().await;
    let (_, bob) = app.customer().await;
    let confirmed = app.place(&ann, json!([{"sku": sku, "quantity": 1}])).await;
    app.wait_decided(1).await;
    let rejected = app.place(&bob, json!([{"sku": sku, "quantity": 1}])).await;
    app.wait_decided(2).await;
    assert_eq!(app.order(&admin, confirmed).await["status"], "confirmed");
    assert_eq!(app.order(&admin, rejected).await["status"], "rejected");
    (confirmed, rejected)
}

/// Waits until the JSON API reports `order` in `status`.
async fn wait_for_status(app: &TestApp, order: Uuid, status: &str) {
    let admin = app.admin_token().await;
    eventually(Duration::from_secs(30), "the order's new status", || {
        let admin = admin.clone();
        async move { (app.order(&admin, order).await["status"] == status).then_some(()) }
    })
    .await;
}

/// Posts a button's form (only the CSRF token) to `path`, with the token
/// read from `page`.
async fn press(console: &Console<'_>, session: &str, page: &str, path: &str) -> Response {
    let (status, html) = console.page(session, page).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let csrf = csrf_in(&html);
    console.post(session, path, &[("csrf", &csrf)]).await
}

/// Follows a 303 with its notice cookie and returns the page's flash text.
async fn flash_after(console: &Console<'_>, session: &str, response: Response) -> String {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    let notice = cookie_value(&set_cookie(&response, NOTICE_COOKIE).expect("a notice cookie"));
    let page = console
        .http
        .get(console.app.url(&location))
        .header(
            COOKIE,
            format!("orderflow_session={session}; {NOTICE_COOKIE}={notice}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    // Shown once: the page clears the cookie.
    assert!(set_cookie(&page, NOTICE_COOKIE).is_some());
    let html = page.text().await.unwrap();
    text_after(&html, r#"<p id="flash""#).expect("the flash")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_page_lists_newest_first_filters_by_status_and_links_each_order() {
    let app = TestApp::start().await;
    let console = Console::new(&app);
    let (confirmed, rejected) = confirmed_and_rejected(&app, "LIST-1").await;
    let staff = app.user_with_role("staff").await;

    let (status, html) = console.page(&staff, "/console/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<a href="/console/orders" aria-current="page">Orders</a>"#));
    let newer = html
        .find(&format!(r#"href="/console/orders/{rejected}""#))
        .expect("the rejected order's link");
    let older = html
        .find(&format!(r#"href="/console/orders/{confirmed}""#))
        .expect("the confirmed order's link");
    assert!(newer < older, "newest first");

    let (status, html) = console
        .page(&staff, "/console/orders?status=rejected")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&rejected.to_string()));
    assert!(!html.contains(&confirmed.to_string()));
    assert!(html.contains(r#"<option value="rejected" selected>"#));

    // An unknown status is refused in the API's words.
    let (status, _) = console.page(&staff, "/console/orders?status=lost").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The dashboard's figures link to the list filtered by their status.
    let (_, dashboard) = console.page(&staff, "/console").await;
    assert!(dashboard.contains(r#"href="/console/orders?status=rejected""#));
    assert!(dashboard.contains(r#"href="/console/orders?status=confirmed""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_page_shows_status_reason_items_and_times_to_every_console_role() {
    let app = TestApp::start().await;
    let console = Console::new(&app);
    let (confirmed, rejected) = confirmed_and_rejected(&app, "SHOW-1").await;
    let reason = app.order(&app.admin_token().await, rejected).await["reason"]
        .as_str()
        .expect("a rejection reason")
        .to_owned();

    for role in ["staff", "manager", "admin"] {
        let session = app.user_with_role(role).await;
        let (status, html) = console
            .page(&session, &format!("/console/orders/{rejected}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{role}");
        assert_eq!(html.matches("<h1").count(), 1);
        assert_eq!(
            text_after(&html, r#"<dd id="order-status""#).as_deref(),
            Some("rejected")
        );
        assert_eq!(
            text_after(&html, r#"<dd id="order-reason""#),
            Some(reason.clone())
        );
        assert!(html.contains(r#"href="/console/products/SHOW-1""#));
        assert!(html.contains("<time datetime="));
        // A rejected order can no longer be settled: no buttons.
        assert!(!html.contains("/fulfil\""), "{role}");
    }
    let staff = app.user_with_role("staff").await;
    let (_, html) = console
        .page(&staff, &format!("/console/orders/{confirmed}"))
        .await;
    assert!(html.contains(&format!(r#"action="/console/orders/{confirmed}/fulfil""#)));
    assert!(html.contains(&format!(r#"action="/console/orders/{confirmed}/cancel""#)));

    let (status, _) = console
        .page(&staff, &format!("/console/orders/{}", Uuid::new_v4()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = console.page(&staff, "/console/orders/not-a-uuid").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_are_refused_the_order_pages() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let (_, customer) = app.customer().await;
    for path in [
        "/console/orders",
        &format!("/console/orders/{}", Uuid::new_v4()),
    ] {
        let (status, _) = console.page(&customer, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fulfilling_from_the_order_page_queues_it_and_says_so() {
    let app = TestApp::start().await;
    let console = Console::new(&app);
    let (confirmed, _) = confirmed_and_rejected(&app, "SHIP-1").await;
    let staff = app.user_with_role("staff").await;
    let page = format!("/console/orders/{confirmed}");

    let response = press(&console, &staff, &page, &format!("{page}/fulfil")).await;
    assert_eq!(response.headers()[LOCATION], page.as_str());
    assert_eq!(
        flash_after(&console, &staff, response).await,
        "Fulfilment queued"
    );
    wait_for_status(&app, confirmed, "fulfilled").await;
    assert_eq!(app.stock("SHIP-1").await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_from_the_order_page_queues_it_and_says_so() {
    let app = TestApp::start().await;
    let console = Console::new(&app);
    let (confirmed, _) = confirmed_and_rejected(&app, "DROP-1").await;
    let staff = app.user_with_role("staff").await;
    let page = format!("/console/orders/{confirmed}");

    let response = press(&console, &staff, &page, &format!("{page}/cancel")).await;
    assert_eq!(
        flash_after(&console, &staff, response).await,
        "Cancellation queued"
    );
    wait_for_status(&app, confirmed, "cancelled").await;
    assert_eq!(app.stock("DROP-1").await, (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settling_a_rejected_order_is_409_in_the_order_alert_and_queues_nothing() {
    let app = TestApp::start().await;
    let console = Console::new(&app);
    let (_, rejected) = confirmed_and_rejected(&app, "LATE-1").await;
    let staff = app.user_with_role("staff").await;
    let page = format!("/console/orders/{rejected}");
    let queued = app.queued().await;

    for action in ["fulfil", "cancel"] {
        let response = press(&console, &staff, &page, &format!("{page}/{action}")).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{action}");
        let html = response.text().await.unwrap();
        let alert = text_after(&html, r#"<p id="order-error" role="alert""#).expect("the alert");
        assert!(
            alert.starts_with("The order is rejected; only a pending or confirmed order"),
            "{alert}"
        );
    }
    assert_eq!(app.queued().await, queued);
    assert_eq!(
        app.order(&app.admin_token().await, rejected).await["status"],
        "rejected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_buttons_without_the_sessions_csrf_token_are_refused_and_queue_nothing() {
    let app = TestApp::start().await;
    let console = Console::new(&app);
    let (confirmed, _) = confirmed_and_rejected(&app, "FORGE-1").await;
    let staff = app.user_with_role("staff").await;
    let admin = app.admin_token().await;
    let (_, html) = console.page(&admin, "/console").await;
    let admins_token = csrf_in(&html);
    let queued = app.queued().await;

    for action in ["fulfil", "cancel"] {
        let path = format!("/console/orders/{confirmed}/{action}");
        for form in [
            vec![],
            vec![("csrf", "00ff")],
            vec![("csrf", admins_token.as_str())],
        ] {
            let response = console.post(&staff, &path, &form).await;
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{action} {form:?}"
            );
        }
    }
    assert_eq!(app.queued().await, queued);
    assert_eq!(app.order(&admin, confirmed).await["status"], "confirmed");
}

/// Registers a webhook through the JSON API and returns its id.
async fn webhook(app: &TestApp, manager: &str, url: &str) -> String {
    let response = app
        .post(
            manager,
            "/webhooks",
            json!({"url": url, "events": ["*"], "secret": "a-signing-secret-1"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn webhooks_listed(app: &TestApp, manager: &str) -> Vec<Value> {
    let body: Value = app.get(manager, "/webhooks").await.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

async fn deliveries(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from webhook_deliveries")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn webhook_pages_are_for_managers_and_admins_and_dead_letters_for_admins() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let staff = app.user_with_role("staff").await;
    let manager = app.user_with_role("manager").await;
    let admin = app.admin_token().await;
    let id = webhook(&app, &manager, "http://127.0.0.1:9/hook").await;
    let pages = [
        "/console/webhooks".to_owned(),
        format!("/console/webhooks/{id}"),
    ];

    let (_, html) = console.page(&staff, "/console").await;
    assert!(html.contains(r#"href="/console/orders""#));
    assert!(!html.contains(r#"href="/console/webhooks""#));
    for path in &pages {
        let (status, _) = console.page(&staff, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    for session in [&manager, &admin] {
        for path in &pages {
            let (status, html) = console.page(session, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(
                html.contains(r#"<a href="/console/webhooks" aria-current="page">Webhooks</a>"#)
            );
        }
    }
    let (status, _) = console
        .page(&manager, "/console/webhooks/dead-letters")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, html) = console.page(&manager, "/console/webhooks").await;
    assert!(!html.contains("/console/webhooks/dead-letters"));
    let (status, _) = console.page(&admin, "/console/webhooks/dead-letters").await;
    assert_eq!(status, StatusCode::OK);
    let (_, html) = console.page(&admin, "/console/webhooks").await;
    assert!(html.contains(r#"href="/console/webhooks/dead-letters""#));

    let (status, _) = console
        .page(&manager, &format!("/console/webhooks/{}", Uuid::new_v4()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_manager_registers_a_webhook_from_the_console() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let manager = app.user_with_role("manager").await;
    let (_, html) = console.page(&manager, "/console/webhooks").await;
    let csrf = csrf_in(&html);

    let response = console
        .post(
            &manager,
            "/console/webhooks",
            &[
                ("url", "https://hooks.example.com/orders"),
                ("events", "order.confirmed"),
                ("events", "order.rejected"),
                ("secret", "a-signing-secret-1"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(response.headers()[LOCATION], "/console/webhooks");
    assert_eq!(
        flash_after(&console, &manager, response).await,
        "Webhook registered"
    );
    let listed = webhooks_listed(&app, &manager).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["url"], "https://hooks.example.com/orders");
    assert_eq!(
        listed[0]["events"],
        json!(["order.confirmed", "order.rejected"])
    );
    let (_, html) = console.page(&manager, "/console/webhooks").await;
    assert!(html.contains("https://hooks.example.com/orders"));

    // Staff may not register one, even with a good token.
    let staff = app.user_with_role("staff").await;
    let (_, html) = console.page(&staff, "/console").await;
    let response = console
        .post(
            &staff,
            "/console/webhooks",
            &[
                ("url", "https://hooks.example.com/staff"),
                ("events", "*"),
                ("secret", "a-signing-secret-1"),
                ("csrf", &csrf_in(&html)),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(webhooks_listed(&app, &manager).await.len(), 1);
}

#[tokio::test]
async fn a_refused_webhook_shows_each_fields_error_keeps_the_values_and_registers_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let manager = app.user_with_role("manager").await;
    let (_, html) = console.page(&manager, "/console/webhooks").await;
    let csrf = csrf_in(&html);

    let response = console
        .post(
            &manager,
            "/console/webhooks",
            &[
                ("url", "ftp://hooks.example.com"),
                ("secret", "short"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    // The API's own messages for the same body.
    let api = app
        .post(
            &manager,
            "/webhooks",
            json!({"url": "ftp://hooks.example.com", "events": [], "secret": "short"}),
        )
        .await;
    assert_eq!(api.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let api: Value = api.json().await.unwrap();
    let api_errors = api["errors"].as_array().expect("field errors");
    assert_eq!(api_errors.len(), 3);
    for error in api_errors {
        let field = error["field"].as_str().unwrap();
        let shown = text_after(
            &html,
            &format!(r#"<p id="webhook-{field}-error" class="field-error""#),
        )
        .unwrap_or_else(|| panic!("the {field} error"));
        // The page escapes the quotes round "*".
        assert_eq!(
            shown.replace("&#34;", "\""),
            error["message"].as_str().unwrap(),
            "{field}"
        );
    }
    assert!(html.contains(r#"name="url" type="url" aria-describedby="webhook-url-error" value="ftp://hooks.example.com" aria-invalid="true""#));
    assert!(html.contains(r#"aria-describedby="webhook-secret-error" aria-invalid="true""#));
    assert!(webhooks_listed(&app, &manager).await.is_empty());
}

#[tokio::test]
async fn webhook_forms_without_the_sessions_csrf_token_are_refused_and_change_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let manager = app.user_with_role("manager").await;
    let id = webhook(&app, &manager, "http://127.0.0.1:9/hook").await;
    let admin = app.admin_token().await;
    let (_, html) = console.page(&admin, "/console").await;
    let admins_token = csrf_in(&html);

    for token in [None, Some("00ff"), Some(admins_token.as_str())] {
        let mut form = vec![
            ("url", "https://hooks.example.com/forged"),
            ("events", "*"),
            ("secret", "a-signing-secret-1"),
        ];
        let mut ping = vec![];
        if let Some(token) = token {
            form.push(("csrf", token));
            ping.push(("csrf", token));
        }
        let response = console.post(&manager, "/console/webhooks", &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{token:?}");
        let response = console
            .post(&manager, &format!("/console/webhooks/{id}/ping"), &ping)
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{token:?}");
    }
    assert_eq!(webhooks_listed(&app, &manager).await.len(), 1);
    assert_eq!(deliveries(&app).await, 0);
}

#[tokio::test]
async fn a_ping_is_queued_and_the_webhooks_page_lists_its_delivery_with_every_attempt() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let manager = app.user_with_role("manager").await;
    let id = webhook(&app, &manager, "http://127.0.0.1:9/hook").await;

    let response = press(
        &console,
        &manager,
        "/console/webhooks",
        &format!("/console/webhooks/{id}/ping"),
    )
    .await;
    assert_eq!(
        flash_after(&console, &manager, response).await,
        "Ping queued"
    );
    let delivery: i64 = sqlx::query_scalar(
        "select id from webhook_deliveries where webhook_id = $1 and event_type = 'webhook.ping'",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    // Two attempts, as the dispatcher records them.
    for (attempt, status, error) in [(1, None, Some("connection refused")), (2, Some(503), None)] {
        sqlx::query(
            "insert into webhook_attempts (delivery_id, attempt, status_code, error, duration_ms)
             values ($1, $2, $3, $4, 12)",
        )
        .bind(delivery)
        .bind(attempt)
        .bind(status)
        .bind(error)
        .execute(&app.db.pool)
        .await
        .unwrap();
    }

    let (status, html) = console
        .page(&manager, &format!("/console/webhooks/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("<h1").count(), 1);
    let card = &html[html
        .find(&format!(r#"id="delivery-{delivery}""#))
        .expect("the delivery")..];
    assert!(card.contains("webhook.ping"));
    assert_eq!(card.matches("<td class=\"number\">12</td>").count(), 2);
    assert!(card.contains("connection refused"));
    assert!(card.contains("<td>503</td>"));
    // Replays are the dead letters' business, not this page's.
    assert!(!card.contains("/replay"));

    // A paused webhook is not pinged: the API's 409 in the page's alert.
    sqlx::query("update webhooks set active = false")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let response = press(
        &console,
        &manager,
        "/console/webhooks",
        &format!("/console/webhooks/{id}/ping"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_after(&html, r#"<p id="ping-error" role="alert""#).as_deref(),
        Some("The webhook is paused; activate it to ping it.")
    );
    assert_eq!(deliveries(&app).await, 1);
}

/// State of delivery `id`.
async fn delivery_state(app: &TestApp, id: i64) -> String {
    sqlx::query_scalar("select state from webhook_deliveries where id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_replays_a_dead_delivery_from_the_dead_letters_page() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let manager = app.user_with_role("manager").await;
    let admin = app.admin_token().await;
    let id = webhook(&app, &manager, "http://127.0.0.1:9/hook").await;
    let ping: Value = app
        .post(&manager, &format!("/webhooks/{id}/ping"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    let delivery = ping["delivery_id"].as_i64().unwrap();
    sqlx::query(
        "update webhook_deliveries set state = 'dead', attempts = 8, dead_at = now() where id = $1",
    )
    .bind(delivery)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let replay = format!("/console/webhooks/dead-letters/{delivery}/replay");

    // Without the session's token, or as a manager, nothing is replayed.
    let response = console.post(&admin, &replay, &[("csrf", "00ff")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (_, html) = console.page(&manager, "/console/webhooks").await;
    let response = console
        .post(&manager, &replay, &[("csrf", &csrf_in(&html))])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(delivery_state(&app, delivery).await, "dead");

    let (status, html) = console.page(&admin, "/console/webhooks/dead-letters").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!(r#"action="{replay}""#)));
    let response = press(&console, &admin, "/console/webhooks/dead-letters", &replay).await;
    assert_eq!(
        response.headers()[LOCATION],
        "/console/webhooks/dead-letters"
    );
    assert_eq!(
        flash_after(&console, &admin, response).await,
        "Replay queued"
    );
    assert_eq!(delivery_state(&app, delivery).await, "pending");
    let (_, html) = console.page(&admin, "/console/webhooks/dead-letters").await;
    assert!(!html.contains(&format!(r#"action="{replay}""#)));

    // A second replay of what is no longer dead: the API's 409 in the alert.
    let (_, html) = console.page(&admin, "/console/webhooks/dead-letters").await;
    let response = console
        .post(&admin, &replay, &[("csrf", &csrf_in(&html))])
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_after(&html, r#"<p id="replay-error" role="alert""#).as_deref(),
        Some("Only a dead delivery can be replayed; this one is pending.")
    );
}
