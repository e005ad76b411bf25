//! The console's users management and low-stock alerts pages, over HTTP
//! against a real database and NATS: who may open them, what their forms
//! change, how a refusal is shown, and that nothing changes without the
//! CSRF token.

mod support;

use reqwest::header::{COOKIE, LOCATION};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use support::console::{cookie_value, csrf_in, set_cookie, text_after, Console};
use support::{TestApp, ADMIN_EMAIL};
use uuid::Uuid;

/// The cookie that carries what a users form did across its redirect.
const USERS_FLASH: &str = "orderflow_users_flash";

/// The admin's refusal of a change that would leave no active admin.
const LAST_ADMIN: &str = "This is the last active admin; make another user an admin first.";

/// A user's (role, active) as stored, by email.
async fn stored_user(app: &TestApp, email: &str) -> Option<(String, bool)> {
    sqlx::query_as("select role, active from users where email = $1")
        .bind(email)
        .fetch_optional(&app.db.pool)
        .await
        .unwrap()
}

async fn user_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn user_id(app: &TestApp, email: &str) -> Uuid {
    sqlx::query_scalar("select id from users where email = $1")
        .bind(email)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// Creates an account through `POST /users` and returns its id.
async fn created_account(app: &TestApp, admin: &str, email: &str, role: &str) -> Uuid {
    let response = app
        .post(
            admin,
            "/users",
            json!({"email": email, "password": "a-long-password", "role": role}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    Uuid::parse_str(body["id"].as_str().unwrap()).unwrap()
}

/// The users page as it shows the flash a form's redirect carried.
async fn page_after(console: &Console<'_>, session: &str, redirect: &Response) -> String {
    assert_eq!(redirect.status(), StatusCode::SEE_OTHER);
    let location = redirect.headers()[LOCATION].to_str().unwrap();
    assert_eq!(location, "/console/users");
    let flash = cookie_value(&set_cookie(redirect, USERS_FLASH).expect("a flash cookie"));
    let response = console
        .http
        .get(console.app.url(location))
        .header(
            COOKIE,
            format!("orderflow_session={session}; {USERS_FLASH}={flash}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Shown once: the page that shows the flash also removes it.
    let cleared = set_cookie(&response, USERS_FLASH).expect("the flash cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    response.text().await.unwrap()
}

/// Posts a form of the users page with the session's CSRF token.
async fn post_users_form(
    console: &Console<'_>,
    session: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> Response {
    let (_, html) = console.page(session, "/console/users").await;
    let csrf = csrf_in(&html);
    let mut form = fields.to_vec();
    form.push(("csrf", &csrf));
    console.post(session, path, &form).await
}

#[tokio::test]
async fn an_admin_creates_an_account_that_can_sign_in_and_is_told_so_once() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    let email = format!("new-{}@example.com", Uuid::new_v4().simple());

    let response = post_users_form(
        &console,
        &admin,
        "/console/users",
        &[
            ("email", &email),
            ("password", "a-long-password"),
            ("role", "manager"),
        ],
    )
    .await;
    let html = page_after(&console, &admin, &response).await;
    assert_eq!(
        text_after(&html, r#"<p id="flash""#).as_deref(),
        Some(format!("Created {email} as manager.").as_str())
    );
    assert_eq!(
        stored_user(&app, &email).await,
        Some(("manager".into(), true))
    );
    let token = app.login(&email, "a-long-password").await;
    assert_eq!(app.get(&token, "/alerts").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_refused_account_shows_each_message_by_its_field_and_creates_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    let before = user_count(&app).await;

    let response = post_users_form(
        &console,
        &admin,
        "/console/users",
        &[
            ("email", "not-an-email"),
            ("password", "short"),
            ("role", "root"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    let email_error = text_after(&html, r#"<p id="create-user-email-error""#).unwrap();
    assert!(
        email_error.starts_with("must be an email address"),
        "{email_error}"
    );
    let password_error = text_after(&html, r#"<p id="create-user-password-error""#).unwrap();
    assert!(
        password_error.starts_with("must be at least"),
        "{password_error}"
    );
    assert_eq!(
        text_after(&html, r#"<p id="create-user-role-error""#).as_deref(),
        Some("must be one of admin, manager, staff, customer")
    );
    assert!(html.contains(
        r#"aria-describedby="create-user-email-error" value="not-an-email" aria-invalid="true""#
    ));
    assert!(html.contains(r#"aria-describedby="create-user-password-error" aria-invalid="true""#));
    assert!(!html.contains("short"), "the password is never sent back");
    assert_eq!(user_count(&app).await, before);

    // A taken email is refused by the email field, with the API's words.
    let response = post_users_form(
        &console,
        &admin,
        "/console/users",
        &[
            ("email", ADMIN_EMAIL),
            ("password", "a-long-password"),
            ("role", "staff"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_after(&html, r#"<p id="create-user-email-error""#).as_deref(),
        Some("an account with this email already exists")
    );
    assert!(html.contains(&format!(r#"value="{ADMIN_EMAIL}" aria-invalid="true""#)));
    assert_eq!(user_count(&app).await, before);
    assert_eq!(
        stored_user(&app, ADMIN_EMAIL).await,
        Some(("admin".into(), true))
    );
}

#[tokio::test]
async fn an_admin_changes_a_role_then_deactivates_and_reactivates_the_account() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    let email = format!("row-{}@example.com", Uuid::new_v4().simple());
    let id = created_account(&app, &admin, &email, "staff").await;

    let response = post_users_form(
        &console,
        &admin,
        &format!("/console/users/{id}/role"),
        &[("role", "manager")],
    )
    .await;
    let html = page_after(&console, &admin, &response).await;
    assert_eq!(
        text_after(&html, r#"<p id="flash""#).as_deref(),
        Some(format!("{email} is now manager.").as_str())
    );
    assert_eq!(
        stored_user(&app, &email).await,
        Some(("manager".into(), true))
    );

    let response = post_users_form(
        &console,
        &admin,
        &format!("/console/users/{id}/active"),
        &[("active", "false")],
    )
    .await;
    let html = page_after(&console, &admin, &response).await;
    assert_eq!(
        text_after(&html, r#"<p id="flash""#).as_deref(),
        Some(format!("Deactivated {email}; their sessions are signed out.").as_str())
    );
    assert_eq!(
        stored_user(&app, &email).await,
        Some(("manager".into(), false))
    );
    let row = &html[html.find(&format!(r#"<tr data-user="{id}">"#)).unwrap()..];
    assert!(row.contains(r#"<input type="hidden" name="active" value="true">"#));

    let response = post_users_form(
        &console,
        &admin,
        &format!("/console/users/{id}/active"),
        &[("active", "true")],
    )
    .await;
    let html = page_after(&console, &admin, &response).await;
    assert_eq!(
        text_after(&html, r#"<p id="flash""#).as_deref(),
        Some(format!("Reactivated {email}.").as_str())
    );
    assert_eq!(
        stored_user(&app, &email).await,
        Some(("manager".into(), true))
    );
}

#[tokio::test]
async fn the_last_active_admin_is_neither_deactivated_nor_demoted_and_the_row_says_why() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    let id = user_id(&app, ADMIN_EMAIL).await;

    let response = post_users_form(
        &console,
        &admin,
        &format!("/console/users/{id}/active"),
        &[("active", "false")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_after(&html, &format!(r#"<p id="active-{id}-error" role="alert""#)).as_deref(),
        Some(LAST_ADMIN)
    );

    let response = post_users_form(
        &console,
        &admin,
        &format!("/console/users/{id}/role"),
        &[("role", "staff")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_after(&html, &format!(r#"<p id="role-{id}-error" role="alert""#)).as_deref(),
        Some(LAST_ADMIN)
    );
    // The refused role stays selected, so the admin sees what was refused.
    let row = &html[html.find(&format!(r#"<tr data-user="{id}">"#)).unwrap()..];
    assert!(row.contains(r#"<option value="staff" selected>"#));
    assert_eq!(
        stored_user(&app, ADMIN_EMAIL).await,
        Some(("admin".into(), true))
    );
}

#[tokio::test]
async fn a_role_the_api_does_not_know_is_refused_by_its_select() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    let email = format!("odd-{}@example.com", Uuid::new_v4().simple());
    let id = created_account(&app, &admin, &email, "staff").await;

    let response = post_users_form(
        &console,
        &admin,
        &format!("/console/users/{id}/role"),
        &[("role", "root")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_after(&html, &format!(r#"<p id="role-{id}-role-error""#)).as_deref(),
        Some("must be one of admin, manager, staff, customer")
    );
    assert!(html.contains(&format!(
        r#"aria-describedby="role-{id}-role-error" aria-invalid="true""#
    )));
    assert_eq!(
        stored_user(&app, &email).await,
        Some(("staff".into(), true))
    );
}

#[tokio::test]
async fn staff_and_managers_may_not_use_the_users_forms() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    let target = format!("target-{}@example.com", Uuid::new_v4().simple());
    let id = created_account(&app, &admin, &target, "staff").await;
    let before = user_count(&app).await;

    for role in ["staff", "manager"] {
        let session = app.user_with_role(role).await;
        // Their own session's CSRF token, so only the role refuses them.
        let (_, html) = console.page(&session, "/console").await;
        let csrf = csrf_in(&html);
        let email = format!("by-{role}-{}@example.com", Uuid::new_v4().simple());
        for (path, form) in [
            (
                "/console/users".to_owned(),
                vec![
                    ("email", email.as_str()),
                    ("password", "a-long-password"),
                    ("role", "admin"),
                ],
            ),
            (format!("/console/users/{id}/role"), vec![("role", "admin")]),
            (
                format!("/console/users/{id}/active"),
                vec![("active", "false")],
            ),
        ] {
            let mut form = form;
            form.push(("csrf", &csrf));
            let response = console.post(&session, &path, &form).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{role} {path}");
            let html = response.text().await.unwrap();
            assert!(html.contains("<h1>Not allowed</h1>"));
        }
    }
    assert_eq!(user_count(&app).await, before + 2);
    assert_eq!(
        stored_user(&app, &target).await,
        Some(("staff".into(), true))
    );
}

#[tokio::test]
async fn users_forms_without_the_right_csrf_token_are_refused_and_change_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    let target = format!("kept-{}@example.com", Uuid::new_v4().simple());
    let id = created_account(&app, &admin, &target, "staff").await;
    let before = user_count(&app).await;
    let new_email = format!("forged-{}@example.com", Uuid::new_v4().simple());

    for csrf in [None, Some("00ff")] {
        for (path, mut form) in [
            (
                "/console/users".to_owned(),
                vec![
                    ("email", new_email.as_str()),
                    ("password", "a-long-password"),
                    ("role", "admin"),
                ],
            ),
            (format!("/console/users/{id}/role"), vec![("role", "admin")]),
            (
                format!("/console/users/{id}/active"),
                vec![("active", "false")],
            ),
        ] {
            if let Some(csrf) = csrf {
                form.push(("csrf", csrf));
            }
            let response = console.post(&admin, &path, &form).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {csrf:?}");
        }
    }
    assert_eq!(user_count(&app).await, before);
    assert_eq!(
        stored_user(&app, &target).await,
        Some(("staff".into(), true))
    );
}

/// Seeds a low-stock alert of `sku` as the notifier records one, raised
/// `minutes_ago`; resolved ones were resolved a minute after.
async fn alert(app: &TestApp, sku: &str, state: &str, available: i64, minutes_ago: i64) -> i64 {
    sqlx::query_scalar(
        "insert into stock_alerts
             (product_id, sku, state, available, threshold, raised_event_id, raised_at,
              resolved_event_id, resolved_at)
         select id, sku, $2, $3, 5, $4, now() - make_interval(mins => $5::int),
                case when $2 = 'resolved' then $4 end,
                case when $2 = 'resolved' then now() - make_interval(mins => $5::int - 1) end
           from products where sku = $1
         returning id",
    )
    .bind(sku)
    .bind(state)
    .bind(available)
    .bind(Uuid::new_v4())
    .bind(minutes_ago)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

/// The ids of the rows of table `id`, in the order shown.
fn alert_rows(html: &str, table: &str) -> Vec<i64> {
    let start = html
        .find(&format!(r#"<table id="{table}">"#))
        .expect("the table");
    let end = start + html[start..].find("</table>").unwrap();
    html[start..end]
        .split(r#"<tr data-alert=""#)
        .skip(1)
        .map(|row| row[..row.find('"').unwrap()].parse().unwrap())
        .collect()
}

#[tokio::test]
async fn the_alerts_page_filters_by_state_and_sku_newest_first_linking_each_product() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "ALERT-A", 2, 5).await;
    app.product_with_stock(&admin, "ALERT-B", 1, 5).await;
    let a_resolved = alert(&app, "ALERT-A", "resolved", 3, 30).await;
    let a_active = alert(&app, "ALERT-A", "active", 2, 20).await;
    let b_active = alert(&app, "ALERT-B", "active", 1, 10).await;
    let staff = app.user_with_role("staff").await;

    let (status, html) = console.page(&staff, "/console/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(alert_rows(&html, "alerts"), vec![b_active, a_active]);
    assert!(html.contains(r#"<option value="active" selected>Active</option>"#));
    assert!(html.contains(r#"<td><a href="/console/products/ALERT-B">ALERT-B</a></td>"#));

    let (_, html) = console
        .page(&staff, "/console/alerts?state=resolved&sku=")
        .await;
    assert_eq!(alert_rows(&html, "alerts"), vec![a_resolved]);

    let (_, html) = console
        .page(&staff, "/console/alerts?state=all&sku=ALERT-A")
        .await;
    assert_eq!(alert_rows(&html, "alerts"), vec![a_active, a_resolved]);
    assert!(html.contains(r#"<input id="alert-sku" name="sku" type="search" value="ALERT-A">"#));

    let (_, html) = console.page(&staff, "/console/alerts?state=all").await;
    assert_eq!(
        alert_rows(&html, "alerts"),
        vec![b_active, a_active, a_resolved]
    );

    // A state the API does not know is refused in its words.
    let (status, html) = console.page(&staff, "/console/alerts?state=open").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("State must be active or resolved."), "{html}");
}

#[tokio::test]
async fn every_console_role_sees_the_alerts_page_and_its_link_and_customers_are_refused() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    for role in ["staff", "manager", "admin"] {
        let session = app.user_with_role(role).await;
        let (_, html) = console.page(&session, "/console").await;
        assert!(
            html.contains(r#"<a href="/console/alerts">Alerts</a>"#),
            "{role}"
        );
        let (status, html) = console.page(&session, "/console/alerts").await;
        assert_eq!(status, StatusCode::OK, "{role}");
        assert!(html.contains("<h1>Low-stock alerts</h1>"));
        assert!(html.contains(r#"<a href="/console/alerts" aria-current="page">Alerts</a>"#));
    }
    let (_, customer) = app.customer().await;
    let (status, html) = console.page(&customer, "/console/alerts").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!html.contains(r#"<table id="alerts">"#));
}

#[tokio::test]
async fn a_product_page_lists_that_products_alerts_only() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "OWN-1", 2, 5).await;
    app.product_with_stock(&admin, "OTHER-1", 1, 5).await;
    let resolved = alert(&app, "OWN-1", "resolved", 4, 30).await;
    let active = alert(&app, "OWN-1", "active", 2, 20).await;
    alert(&app, "OTHER-1", "active", 1, 10).await;
    let staff = app.user_with_role("staff").await;

    let (status, html) = console.page(&staff, "/console/products/OWN-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(alert_rows(&html, "product-alerts"), vec![active, resolved]);
    assert!(html.contains(r#"href="/console/alerts?state=all&amp;sku=OWN-1""#));
}
