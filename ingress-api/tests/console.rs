//! The web console under `/console`: sessions, roles, CSRF, the receive
//! form, escaping and the live feed, over HTTP against a real database and
//! NATS. Redirects are not followed, so each answer is checked as sent.

mod support;

use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION};
use reqwest::StatusCode;
use serde_json::json;
use support::console::{
    account, cookie_value, csrf_in, ledger_rows, set_cookie, text_after, Console,
};
use support::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use testkit::eventually;

/// The bound of a stock operation's quantity, as the API words it.
const QUANTITY_MESSAGE: &str = "must be between 1 and 1000000000";

#[tokio::test]
async fn signing_in_sets_an_http_only_strict_session_cookie_and_opens_the_dashboard() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);

    let response = console.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console");
    let cookie = set_cookie(&response, "orderflow_session").expect("a session cookie");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes.contains(&"HttpOnly"), "{cookie}");
    assert!(attributes.contains(&"SameSite=Strict"), "{cookie}");
    assert!(attributes.contains(&"Path=/"), "{cookie}");
    let max_age = format!("Max-Age={}", app.settings.jwt_ttl.as_secs());
    assert!(attributes.contains(&max_age.as_str()), "{cookie}");
    // Development serves plain HTTP; only production marks it Secure.
    assert!(!attributes.contains(&"Secure"), "{cookie}");

    // The cookie is the API's own access token.
    let session = cookie_value(&cookie);
    assert_eq!(
        app.get(&session, "/dashboard").await.status(),
        StatusCode::OK
    );

    let (status, html) = console.page(&session, "/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"));
    assert!(html.contains("<h1>Dashboard</h1>"));
    assert!(html.contains(ADMIN_EMAIL));
    assert!(html.contains(r#"<a href="/console" aria-current="page">Dashboard</a>"#));
    assert!(html.contains(r#"<ul id="live-feed" aria-live="polite">"#));
    assert!(html.contains(r#"<section id="orders-today""#));
    assert!(html.contains(r#"<p id="queue-depth">Queue depth: 0."#));
    assert!(html.contains(r#"<p id="low-stock-count">"#));

    // Signed in, the sign-in page sends the user on.
    let response = console.get(Some(&session), "/console/login").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn in_production_the_session_cookie_is_secure() {
    let app = TestApp::start_with(
        &[
            ("ORDERFLOW_ENV", "production"),
            ("ORDERFLOW_JWT_SECRET", "a-production-secret-for-this-test"),
        ],
        false,
    )
    .await;
    let response = Console::new(&app).login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&response, "orderflow_session").expect("a session cookie");
    assert!(cookie.split(';').any(|a| a.trim() == "Secure"), "{cookie}");
}

#[tokio::test]
async fn a_wrong_password_or_unknown_email_is_401_with_the_same_alert_and_no_cookie() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);

    let mut alerts = Vec::new();
    for (email, password) in [
        (ADMIN_EMAIL, "not-the-password"),
        ("nobody-here@example.com", "not-the-password"),
    ] {
        let response = console.login(email, password).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(set_cookie(&response, "orderflow_session").is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains(r#"<form id="login-form" method="post" action="/console/login""#));
        let alert = text_after(&html, r#"<p id="login-error" role="alert""#).expect("an alert");
        // The email is kept, so only the password is typed again.
        assert!(html.contains(&format!(r#"value="{email}""#)), "{html}");
        alerts.push(alert);
    }
    assert_eq!(alerts[0], "Wrong email or password.");
    assert_eq!(
        alerts[0], alerts[1],
        "the alert tells nothing about the email"
    );
}

#[tokio::test]
async fn the_login_throttle_applies_to_the_console_and_its_message_is_shown() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let (email, password) = account(&app, "staff").await;
    for _ in 0..5 {
        let response = console.login(&email, "wrong-password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = console.login(&email, &password).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert!(set_cookie(&response, "orderflow_session").is_none());
    let html = response.text().await.unwrap();
    let alert = text_after(&html, r#"<p id="login-error" role="alert""#).expect("an alert");
    assert!(alert.contains("failed logins"), "{alert}");
}

#[tokio::test]
async fn customers_may_not_use_the_console() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let (email, password) = account(&app, "customer").await;

    let response = console.login(&email, &password).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&response, "orderflow_session").is_none());
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("<h1>Not allowed</h1>"));

    // Nor with an API token put in the cookie by hand.
    let (_, token) = app.customer().await;
    for path in ["/console", "/console/products"] {
        let (status, html) = console.page(&token, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(html.contains("<h1>Not allowed</h1>"));
    }
}

#[tokio::test]
async fn a_page_without_a_valid_session_redirects_to_sign_in() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let staff = app.user_with_role("staff").await;
    assert_eq!(
        console.page(&staff, "/console").await.0,
        StatusCode::OK,
        "the session works before it is revoked"
    );
    // Revoked: the user's token version moves past the token's.
    sqlx::query("update users set token_version = token_version + 1 where role = 'staff'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "the revocation to apply", || {
        let console = &console;
        let staff = &staff;
        async move { (console.page(staff, "/console").await.0 == StatusCode::SEE_OTHER).then_some(()) }
    })
    .await;

    for session in [None, Some("not-a-token"), Some(staff.as_str())] {
        for path in [
            "/console",
            "/console/products",
            "/console/products/ANY-1",
            "/console/users",
        ] {
            let response = console.get(session, path).await;
            assert_eq!(
                response.status(),
                StatusCode::SEE_OTHER,
                "{path} {session:?}"
            );
            assert_eq!(response.headers()[LOCATION], "/console/login");
        }
    }
    let response = console.get(None, "/console/login").await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"<input id="email" name="email" type="email" autocomplete="username""#));
    assert!(html.contains(
        r#"<input id="password" name="password" type="password" autocomplete="current-password""#
    ));
}

#[tokio::test]
async fn staff_and_managers_are_refused_the_users_page_and_never_shown_its_link() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    for role in ["staff", "manager"] {
        let session = app.user_with_role(role).await;
        let (status, html) = console.page(&session, "/console").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(r#"href="/console/products""#));
        assert!(!html.contains(r#"href="/console/users""#), "{role}");

        let (status, html) = console.page(&session, "/console/users").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}");
        assert!(html.contains("<h1>Not allowed</h1>"));
        assert!(!html.contains(r#"<table id="users">"#));
    }
}

#[tokio::test]
async fn admins_see_the_users_page_and_its_link() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let (staff_email, _) = account(&app, "staff").await;
    let admin = app.admin_token().await;

    let (_, html) = console.page(&admin, "/console").await;
    assert!(html.contains(r#"<a href="/console/users">Users</a>"#));

    let (status, html) = console.page(&admin, "/console/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h1>Users</h1>"));
    assert!(html.contains(r#"<a href="/console/users" aria-current="page">Users</a>"#));
    let table = &html[html.find(r#"<table id="users">"#).expect("the users table")..];
    assert!(table.contains(&format!("<td>{staff_email}</td>")));
    assert!(table.contains("<td>staff</td>"));
    assert!(table.contains(&format!("<td>{ADMIN_EMAIL}</td>")));
}

#[tokio::test]
async fn a_receipt_of_zero_or_text_is_refused_beside_the_field_and_receives_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "FORM-1", 0, 5).await;
    let staff = app.user_with_role("staff").await;

    for quantity in ["0", "abc"] {
        let response = console.receive(&staff, "FORM-1", quantity).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{quantity}"
        );
        let html = response.text().await.unwrap();
        let error = text_after(
            &html,
            r#"<p id="receive-quantity-error" class="field-error""#,
        )
        .expect("the field's error");
        assert_eq!(error, QUANTITY_MESSAGE);
        // The entered value is kept and the field marked invalid.
        let input = &html[html.find(r#"<input id="receive-quantity""#).unwrap()..];
        let input = &input[..input.find('>').unwrap()];
        assert!(input.contains(&format!(r#"value="{quantity}""#)), "{input}");
        assert!(input.contains(r#"aria-invalid="true""#), "{input}");
        assert!(input.contains(r#"aria-describedby="receive-quantity-error""#));
    }
    // The API words a zero the same way.
    let problem = support::problem(
        app.post(
            &staff,
            "/inventory/receive",
            json!({"sku": "FORM-1", "quantity": 0}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["errors"][0]["message"], QUANTITY_MESSAGE);

    assert_eq!(ledger_rows(&app, "FORM-1").await, 0);
    assert_eq!(app.stock("FORM-1").await, (0, 0));
}

#[tokio::test]
async fn an_unknown_location_is_refused_beside_its_field() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "FORM-2", 0, 5).await;
    let (_, html) = console.page(&admin, "/console/products/FORM-2").await;
    let response = console
        .post(
            &admin,
            "/console/products/FORM-2/receive",
            &[
                ("quantity", "3"),
                ("location", "nowhere"),
                ("csrf", &csrf_in(&html)),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    let error = text_after(
        &html,
        r#"<p id="receive-location-error" class="field-error""#,
    )
    .expect("the location's error");
    assert_eq!(error, "no location has code nowhere");
    assert_eq!(ledger_rows(&app, "FORM-2").await, 0);
}

#[tokio::test]
async fn a_valid_receipt_changes_stock_and_shows_what_was_received_once() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "FORM-3", 5, 2).await;
    let staff = app.user_with_role("staff").await;

    let response = console.receive(&staff, "FORM-3", "7").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console/products/FORM-3");
    let flash = cookie_value(&set_cookie(&response, "orderflow_flash").expect("a flash"));
    assert_eq!(app.stock("FORM-3").await, (12, 0));
    assert_eq!(ledger_rows(&app, "FORM-3").await, 2);
    assert_eq!(app.ledger_drift().await, 0);

    let response = console
        .http
        .get(app.url("/console/products/FORM-3"))
        .header(
            COOKIE,
            format!("orderflow_session={staff}; orderflow_flash={flash}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cleared = set_cookie(&response, "orderflow_flash").expect("the flash is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let html = response.text().await.unwrap();
    assert_eq!(
        text_after(&html, r#"<p id="flash" role="status""#).as_deref(),
        Some("Received 7 at main")
    );
    let row = &html[html
        .find(r#"<tr data-location="main">"#)
        .expect("main's row")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(r#"<td class="number">12</td>"#), "{row}");
    let ledger = &html[html.find(r#"<table id="ledger">"#).expect("the ledger")..];
    assert!(ledger.contains(r#"<td class="number">7</td>"#));

    let (_, again) = console.page(&staff, "/console/products/FORM-3").await;
    assert!(!again.contains(r#"id="flash""#));
}

#[tokio::test]
async fn a_post_without_the_right_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "CSRF-1", 4, 1).await;
    let staff = app.user_with_role("staff").await;
    let (_, html) = console.page(&admin, "/console/products/CSRF-1").await;
    let admins_token = csrf_in(&html);

    for form in [
        vec![("quantity", "5"), ("location", "main")],
        vec![("quantity", "5"), ("location", "main"), ("csrf", "00ff")],
        // Another session's token is no good either.
        vec![
            ("quantity", "5"),
            ("location", "main"),
            ("csrf", admins_token.as_str()),
        ],
    ] {
        let response = console
            .post(&staff, "/console/products/CSRF-1/receive", &form)
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{form:?}");
    }
    assert_eq!(app.stock("CSRF-1").await, (4, 0));
    assert_eq!(ledger_rows(&app, "CSRF-1").await, 1);

    let response = console.post(&staff, "/console/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&response, "orderflow_session").is_none());
}

#[tokio::test]
async fn signing_out_clears_the_session_cookie() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let staff = app.user_with_role("staff").await;
    let (_, html) = console.page(&staff, "/console").await;
    assert!(html.contains(r#"<form method="post" action="/console/logout">"#));
    let response = console
        .post(&staff, "/console/logout", &[("csrf", &csrf_in(&html))])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console/login");
    let cleared = set_cookie(&response, "orderflow_session").expect("the cookie is cleared");
    assert!(cleared.starts_with("orderflow_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn markup_in_product_fields_is_shown_as_text() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    let response = app
        .post(
            &admin,
            "/products",
            json!({"sku": "XSS-1", "name": "<script>alert(1)</script>", "price_cents": 100,
                   "category": "\"><img src=x onerror=alert(2)>", "low_stock_threshold": 0}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    for path in ["/console/products", "/console/products/XSS-1"] {
        let (status, html) = console.page(&admin, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(!html.contains("<script>alert(1)"), "{path}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{path}"
        );
    }
    let (_, html) = console.page(&admin, "/console/products").await;
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("&#34;&#62;&#60;img src=x onerror=alert(2)&#62;"));
}

#[tokio::test]
async fn the_product_search_filters_like_the_api() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    for (sku, name, category, stock) in [
        ("BOLT-1", "Hex bolt", "fasteners", 100),
        ("BOLT-2", "Carriage bolt", "fasteners", 1),
        ("SAW-1", "Hand saw", "tools", 50),
    ] {
        let response = app
            .post(
                &admin,
                "/products",
                json!({"sku": sku, "name": name, "price_cents": 100, "category": category,
                       "low_stock_threshold": 5}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        app.post(
            &admin,
            "/inventory/receive",
            json!({"sku": sku, "quantity": stock}),
        )
        .await;
    }
    let rows = |html: &str| -> Vec<String> {
        let link = r#"<td><a href="/console/products/"#;
        html.match_indices(link)
            .map(|(at, _)| {
                let rest = &html[at + link.len()..];
                rest[..rest.find('"').unwrap()].to_owned()
            })
            .collect()
    };
    let (_, html) = console.page(&admin, "/console/products").await;
    assert_eq!(rows(&html), ["BOLT-1", "BOLT-2", "SAW-1"]);
    assert!(html.contains(r#"<option value="fasteners">fasteners</option>"#));
    let (_, html) = console.page(&admin, "/console/products?q=bolt").await;
    assert_eq!(rows(&html), ["BOLT-1", "BOLT-2"]);
    let (_, html) = console
        .page(&admin, "/console/products?q=&category=tools")
        .await;
    assert_eq!(rows(&html), ["SAW-1"]);
    assert!(html.contains(r#"<option value="tools" selected>"#));
    let (_, html) = console.page(&admin, "/console/products?low=1").await;
    assert_eq!(rows(&html), ["BOLT-2"]);
    assert!(html.contains(r#"value="1" checked"#));
}

#[tokio::test]
async fn the_assets_are_served_with_long_cache_headers() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let staff = app.user_with_role("staff").await;
    let (_, html) = console.page(&staff, "/console").await;
    for (path, kind) in [
        ("/console/assets/console.js", "text/javascript"),
        ("/console/assets/console.css", "text/css"),
    ] {
        assert!(html.contains(&format!(r#""{path}?v="#)), "{path} is linked");
        let response = console.get(None, path).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with(kind));
        assert!(response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000"));
    }
    let script = console
        .get(None, "/console/assets/console.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(script.contains(r#"new EventSource("/console/events")"#));
    assert_eq!(
        console.get(None, "/console/assets/other.js").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_live_feed_streams_a_receipt_with_the_session_cookie_and_refuses_without() {
    let app = TestApp::start().await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "LIVE-1", 0, 1).await;

    let response = console.get(None, "/console/events").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (_, customer) = app.customer().await;
    let response = console.get(Some(&customer), "/console/events").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let staff = app.user_with_role("staff").await;
    let response = console.get(Some(&staff), "/console/events").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = response.bytes_stream().boxed();

    let receipt = console.receive(&staff, "LIVE-1", "9").await;
    assert_eq!(receipt.status(), StatusCode::SEE_OTHER);

    let mut buffer = String::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let chunk = body.next().await.expect("the stream stays open").unwrap();
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            let changed = buffer
                .split("\n\n")
                .filter(|block| block.lines().any(|l| l == "event: stock.changed"))
                .filter_map(|block| {
                    let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
                    serde_json::from_str::<serde_json::Value>(data).ok()
                })
                .find(|event| event["sku"] == "LIVE-1");
            if let Some(event) = changed {
                return event;
            }
        }
    })
    .await
    .expect("a stock.changed event within the deadline");
    assert_eq!(found["on_hand"], 9, "{found}");
}

/// The dashboard's decided-per-minute table: ten rows, the current minute
/// last, each counting the orders decided in it.
#[tokio::test]
async fn the_dashboard_counts_orders_decided_in_each_of_the_last_ten_minutes() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let session = cookie_value(
        &set_cookie(
            &console.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
            "orderflow_session",
        )
        .unwrap(),
    );
    // Two decided three minutes ago, one in this minute, one still pending,
    // and one decided an hour ago (outside the table).
    let minute_start: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select date_trunc('minute', now())")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let three_ago = minute_start - chrono::Duration::minutes(3);
    for (status, decided_at) in [
        ("confirmed", Some(three_ago)),
        ("fulfilled", Some(three_ago + chrono::Duration::seconds(30))),
        ("confirmed", Some(minute_start)),
        ("pending", None),
        (
            "confirmed",
            Some(minute_start - chrono::Duration::minutes(60)),
        ),
    ] {
        sqlx::query(
            "insert into orders (id, customer_id, status, request_hash, partition, created_at,
                                 decided_at)
             values ($1, $2, $3, '\\x00', 0, coalesce($4, now()) - interval '1 second', $4)",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(uuid::Uuid::new_v4())
        .bind(status)
        .bind(decided_at)
        .execute(&app.db.pool)
        .await
        .unwrap();
    }
    let (status, html) = console.page(&session, "/console").await;
    assert_eq!(status, StatusCode::OK);
    let section = html
        .split(r#"<section id="decided-per-minute""#)
        .nth(1)
        .expect("the decided-per-minute section")
        .split("</section>")
        .next()
        .unwrap();
    let counts: Vec<(String, i64)> = section
        .split("<tr><td>")
        .skip(1)
        .map(|row| {
            let minute = row.split("</td>").next().unwrap().to_owned();
            let decided = row
                .split(r#"<td class="number">"#)
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            (minute, decided)
        })
        .collect();
    let label = |t: chrono::DateTime<chrono::Utc>| t.format("%H:%M").to_string();
    let decided_in = |t| {
        counts
            .iter()
            .find(|(minute, _)| *minute == label(t))
            .map(|(_, n)| *n)
    };
    // By label, not position: the page may be drawn a minute later.
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert_eq!(decided_in(minute_start), Some(1), "{counts:?}");
    assert_eq!(decided_in(three_ago), Some(2), "{counts:?}");
    assert_eq!(
        counts.iter().map(|(_, n)| n).sum::<i64>(),
        3,
        "only the last ten minutes count: {counts:?}"
    );
}
