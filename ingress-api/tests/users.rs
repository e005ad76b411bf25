//! Users and roles: admins list, create and change users; a user changes
//! their own password; every refusal has its test; a revoked token stops
//! working on this replica and on another one, and stays revoked while the
//! database is unreachable.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{problem, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use testkit::eventually;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a revocation may take to be seen: at once on the replica that
/// made it, within about a second (the refresh interval) on another.
const REVOCATION_DEADLINE: Duration = Duration::from_secs(5);

const PASSWORD: &str = "a-long-password";

async fn login_status(app: &TestApp, email: &str, password: &str) -> StatusCode {
    app.http
        .post(app.url("/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

/// Creates a user through `POST /users` and returns (id, email).
async fn create_user(app: &TestApp, admin: &str, prefix: &str, role: &str) -> (Uuid, String) {
    let email = format!("{prefix}-{}@example.com", Uuid::new_v4().simple());
    let response = app
        .post(
            admin,
            "/users",
            json!({"email": email, "password": PASSWORD, "role": role}),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{:?}",
        response.text().await
    );
    let body: Value = response.json().await.unwrap();
    (
        Uuid::parse_str(body["id"].as_str().unwrap()).unwrap(),
        email,
    )
}

async fn admin_id(app: &TestApp) -> Uuid {
    sqlx::query_scalar("select id from users where email = $1")
        .bind(ADMIN_EMAIL)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

fn one_order() -> Value {
    json!({"items": [{"sku": "ANY-1", "quantity": 1}]})
}

/// Waits until `token` is refused on `GET /products` of `base` as revoked.
async fn until_revoked(http: &reqwest::Client, base: &str, token: &str) {
    eventually(REVOCATION_DEADLINE, "the token to be revoked", || async {
        let response = http
            .get(format!("{base}/products"))
            .bearer_auth(token)
            .send()
            .await
            .ok()?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return None;
        }
        let body: Value = response.json().await.ok()?;
        (body["detail"] == "the token was revoked").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_staff_and_managers_are_refused_every_users_endpoint_with_403() {
    let app = TestApp::start_with(&[], false).await;
    let admin_id = admin_id(&app).await;
    let (_, customer) = app.customer().await;
    let staff = app.user_with_role("staff").await;
    let manager = app.user_with_role("manager").await;
    for (who, token) in [
        ("customer", &customer),
        ("staff", &staff),
        ("manager", &manager),
    ] {
        let body = problem(app.get(token, "/users").await, StatusCode::FORBIDDEN).await;
        assert_eq!(body["type"], "/problems/forbidden", "{who}");
        problem(
            app.get(token, "/users?role=admin&limit=1").await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(
            app.post(
                token,
                "/users",
                json!({"email": "intruder@example.com", "password": PASSWORD, "role": "admin"}),
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(
            app.patch(
                token,
                &format!("/users/{admin_id}"),
                json!({"active": false}),
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        // Refused on the role before the body is read: a caller without it
        // learns nothing about what the body should look like.
        problem(
            app.patch(token, &format!("/users/{admin_id}"), json!({"nonsense": 1}))
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        problem(
            app.post(token, "/users", json!("not even an object")).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let (intruders, admin_active): (i64, bool) = sqlx::query_as(
        "select (select count(*) from users where email = 'intruder@example.com'),
                (select active from users where id = $1)",
    )
    .bind(admin_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!((intruders, admin_active), (0, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_a_valid_token_are_refused_every_users_endpoint_with_401() {
    let app = TestApp::start_with(&[], false).await;
    let admin_id = admin_id(&app).await;
    let users_path = format!("/users/{admin_id}");
    for token in [None, Some("not-a-jwt")] {
        let with_token = |request: reqwest::RequestBuilder| match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let requests = [
            with_token(app.http.get(app.url("/users"))),
            with_token(app.http.post(app.url("/users")))
                .json(&json!({"email": "anon@example.com", "password": PASSWORD, "role": "admin"})),
            with_token(app.http.patch(app.url(&users_path))).json(&json!({"active": false})),
            with_token(app.http.post(app.url("/auth/password")))
                .json(&json!({"current_password": ADMIN_PASSWORD, "new_password": PASSWORD})),
        ];
        for request in requests {
            let response = request.send().await.unwrap();
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            problem(response, StatusCode::UNAUTHORIZED).await;
        }
    }
    assert_eq!(
        login_status(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_a_staff_user_who_can_log_in_and_receive_stock_and_a_manager() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "STAFF-1", 0, 0).await;

    let email = format!("New.Staff-{}@Example.com", Uuid::new_v4().simple());
    let response = app
        .post(
            &admin,
            "/users",
            json!({"email": format!("  {email} "), "password": PASSWORD, "role": "staff"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let staff_user: Value = response.json().await.unwrap();
    assert_eq!(staff_user["email"], email.to_lowercase());
    assert_eq!(staff_user["role"], "staff");
    assert_eq!(staff_user["active"], true);
    assert!(staff_user["created_at"].is_string());
    assert!(staff_user.get("password").is_none() && staff_user.get("password_hash").is_none());

    let staff = app.login(&email.to_lowercase(), PASSWORD).await;
    let response = app
        .post(
            &staff,
            "/inventory/receive",
            json!({"sku": "STAFF-1", "quantity": 7}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.stock("STAFF-1").await, (7, 0));
    // Staff is not a manager.
    problem(
        app.post(
            &staff,
            "/products",
            json!({"sku": "NOPE-1", "name": "No", "price_cents": 1, "low_stock_threshold": 0}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let (_, manager_email) = create_user(&app, &admin, "manager", "manager").await;
    let manager = app.login(&manager_email, PASSWORD).await;
    let response = app
        .post(
            &manager,
            "/products",
            json!({"sku": "MGR-1", "name": "By a manager", "price_cents": 100, "low_stock_threshold": 0}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    problem(app.get(&manager, "/users").await, StatusCode::FORBIDDEN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_users_by_email_filtered_by_role_and_active_a_page_at_a_time() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let mut staff = Vec::new();
    for prefix in ["s-a", "s-b", "s-c"] {
        staff.push(create_user(&app, &admin, prefix, "staff").await);
    }
    let (manager_id, manager_email) = create_user(&app, &admin, "m-a", "manager").await;
    let (_, customer_email) = create_user(&app, &admin, "c-a", "customer").await;
    let response = app
        .patch(
            &admin,
            &format!("/users/{}", staff[1].0),
            json!({"active": false}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let emails = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let page: Value = app
        .get(&admin, "/users?role=staff")
        .await
        .json()
        .await
        .unwrap();
    let staff_emails: Vec<String> = staff.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(emails(&page), staff_emails, "staff only, ordered by email");
    assert!(page["next_cursor"].is_null());

    let page: Value = app
        .get(&admin, "/users?role=staff&active=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(emails(&page), vec![staff[0].1.clone(), staff[2].1.clone()]);
    let page: Value = app
        .get(&admin, "/users?active=false")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(emails(&page), vec![staff[1].1.clone()]);
    assert_eq!(page["items"][0]["active"], false);
    let page: Value = app
        .get(&admin, "/users?role=manager")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["id"], manager_id.to_string());
    assert_eq!(page["items"][0]["role"], "manager");

    // Two at a time through everyone: every user once, in email order.
    let mut everyone = vec![
        ADMIN_EMAIL.to_owned(),
        manager_email,
        customer_email,
        staff[0].1.clone(),
        staff[1].1.clone(),
        staff[2].1.clone(),
    ];
    everyone.sort();
    let mut seen = Vec::new();
    let mut path = "/users?limit=2".to_owned();
    loop {
        let page: Value = app.get(&admin, &path).await.json().await.unwrap();
        let items = emails(&page);
        assert!(items.len() <= 2);
        seen.extend(items);
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, everyone);

    for (query, field) in [
        ("role=boss", "role"),
        ("active=maybe", "query"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=%25%25", "cursor"),
    ] {
        let body = problem(
            app.get(&admin, &format!("/users?{query}")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], field, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_users_token_is_refused_and_they_cannot_log_in_until_reactivated() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let (id, email) = create_user(&app, &admin, "leaver", "customer").await;
    let token = app.login(&email, PASSWORD).await;
    assert_eq!(app.get(&token, "/products").await.status(), StatusCode::OK);
    assert_eq!(
        app.post(&token, "/orders", one_order()).await.status(),
        StatusCode::ACCEPTED
    );

    let response = app
        .patch(&admin, &format!("/users/{id}"), json!({"active": false}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["active"].clone(), body["role"].clone()),
        (json!(false), json!("customer"))
    );

    until_revoked(&app.http, &app.base, &token).await;
    let body = problem(
        app.post(&token, "/orders", one_order()).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["detail"], "the token was revoked");
    assert_eq!(
        login_status(&app, &email, PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );

    let response = app
        .patch(&admin, &format!("/users/{id}"), json!({"active": true}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let fresh = app.login(&email, PASSWORD).await;
    assert_eq!(app.get(&fresh, "/products").await.status(), StatusCode::OK);
    assert_eq!(
        app.post(&fresh, "/orders", one_order()).await.status(),
        StatusCode::ACCEPTED
    );
    // Reactivation lets the user sign in again; it does not bring back the
    // tokens the deactivation revoked.
    problem(app.get(&token, "/products").await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_revokes_the_old_token_and_the_next_login_carries_the_new_role() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "ROLE-1", 0, 0).await;

    // Promoted: the customer token is revoked; a new login acts as staff.
    let (id, email) = create_user(&app, &admin, "promoted", "customer").await;
    let customer = app.login(&email, PASSWORD).await;
    problem(
        app.post(
            &customer,
            "/inventory/receive",
            json!({"sku": "ROLE-1", "quantity": 1}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let response = app
        .patch(&admin, &format!("/users/{id}"), json!({"role": "staff"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["role"], "staff");
    until_revoked(&app.http, &app.base, &customer).await;
    let staff = app.login(&email, PASSWORD).await;
    let response = app
        .post(
            &staff,
            "/inventory/receive",
            json!({"sku": "ROLE-1", "quantity": 1}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // Demoted: the manager token must not keep the manager's rights.
    let (id, email) = create_user(&app, &admin, "demoted", "manager").await;
    let manager = app.login(&email, PASSWORD).await;
    let product = |sku: &str| json!({"sku": sku, "name": "Demotion", "price_cents": 1, "low_stock_threshold": 0});
    assert_eq!(
        app.post(&manager, "/products", product("DEM-1"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let response = app
        .patch(&admin, &format!("/users/{id}"), json!({"role": "customer"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    until_revoked(&app.http, &app.base, &manager).await;
    problem(
        app.post(&manager, "/products", product("DEM-2")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let customer = app.login(&email, PASSWORD).await;
    problem(
        app.post(&customer, "/products", product("DEM-3")).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // The same role again changes nothing and revokes nothing.
    let response = app
        .patch(&admin, &format!("/users/{id}"), json!({"role": "customer"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.get(&customer, "/products").await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_needs_the_current_password_and_revokes_every_older_token() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let (_, email) = create_user(&app, &admin, "rotator", "staff").await;
    let first = app.login(&email, PASSWORD).await;
    let second = app.login(&email, PASSWORD).await;

    let body = problem(
        app.post(
            &first,
            "/auth/password",
            json!({"current_password": "not-the-password", "new_password": "a-brand-new-password"}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["detail"], "the current password is wrong");
    let body = problem(
        app.post(
            &first,
            "/auth/password",
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "new_password");
    assert_eq!(body["errors"][0]["limit"], 8);
    problem(
        app.post(
            &first,
            "/auth/password",
            json!({"current_password": PASSWORD}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    // None of the refusals changed anything.
    assert_eq!(app.get(&second, "/products").await.status(), StatusCode::OK);

    let response = app
        .post(
            &first,
            "/auth/password",
            json!({"current_password": PASSWORD, "new_password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let fresh = body["access_token"].as_str().unwrap().to_owned();

    until_revoked(&app.http, &app.base, &first).await;
    until_revoked(&app.http, &app.base, &second).await;
    assert_eq!(app.get(&fresh, "/products").await.status(), StatusCode::OK);
    assert_eq!(
        login_status(&app, &email, PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    let relogin = app.login(&email, "a-brand-new-password").await;
    assert_eq!(
        app.get(&relogin, "/products").await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_active_admin_cannot_be_demoted_or_deactivated_even_by_themselves() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let first_id = admin_id(&app).await;
    for change in [
        json!({"active": false}),
        json!({"role": "manager"}),
        json!({"role": "customer", "active": false}),
    ] {
        let body = problem(
            app.patch(&admin, &format!("/users/{first_id}"), change)
                .await,
            StatusCode::CONFLICT,
        )
        .await;
        assert!(body["detail"]
            .as_str()
            .unwrap()
            .contains("last active admin"));
    }
    // Changing nothing that matters is fine.
    let response = app
        .patch(
            &admin,
            &format!("/users/{first_id}"),
            json!({"role": "admin", "active": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    // A deactivated admin does not count.
    let (dormant_id, _) = create_user(&app, &admin, "dormant", "admin").await;
    let response = app
        .patch(
            &admin,
            &format!("/users/{dormant_id}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    problem(
        app.patch(
            &admin,
            &format!("/users/{first_id}"),
            json!({"role": "staff"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;

    // With a second active admin the first may step down; then the second
    // is the last and may not.
    let (second_id, second_email) = create_user(&app, &admin, "second", "admin").await;
    let second = app.login(&second_email, PASSWORD).await;
    let response = app
        .patch(
            &admin,
            &format!("/users/{first_id}"),
            json!({"role": "manager"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    until_revoked(&app.http, &app.base, &admin).await;
    problem(
        app.patch(
            &second,
            &format!("/users/{second_id}"),
            json!({"active": false}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    let active_admins: i64 =
        sqlx::query_scalar("select count(*) from users where role = 'admin' and active")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(active_admins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_email_is_409_an_unknown_id_404_and_bad_input_422_naming_the_field() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let (id, email) = create_user(&app, &admin, "taken", "staff").await;

    let body = problem(
        app.post(
            &admin,
            "/users",
            json!({"email": email.to_uppercase(), "password": PASSWORD, "role": "manager"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(body["type"], "/problems/conflict");

    for unknown in [Uuid::now_v7().to_string(), "not-a-uuid".to_owned()] {
        let body = problem(
            app.patch(
                &admin,
                &format!("/users/{unknown}"),
                json!({"active": false}),
            )
            .await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(body["type"], "/problems/not-found");
    }

    let fields = |body: &Value| -> Vec<(String, Option<i64>)> {
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].as_str().unwrap().to_owned(), e["limit"].as_i64()))
            .collect()
    };
    let body = problem(
        app.post(
            &admin,
            "/users",
            json!({"email": "no-at-sign", "password": "short", "role": "boss"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        fields(&body),
        vec![
            ("email".to_owned(), Some(254)),
            ("password".to_owned(), Some(8)),
            ("role".to_owned(), None)
        ]
    );
    let body = problem(
        app.post(
            &admin,
            "/users",
            json!({"email": "x@example.com", "password": PASSWORD}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("role"));

    for (change, field) in [
        (json!({}), "body"),
        (json!({"role": null, "active": null}), "body"),
        (json!({"role": "boss"}), "role"),
        (json!({"active": "no"}), "active"),
        (json!({"email": "new@example.com"}), "body"),
    ] {
        let body = problem(
            app.patch(&admin, &format!("/users/{id}"), change.clone())
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        if field == "body" && change.get("email").is_some() {
            assert!(
                body["detail"].as_str().unwrap().contains("email"),
                "{change}"
            );
        } else {
            assert_eq!(body["errors"][0]["field"], field, "{change}");
        }
    }
    // None of it changed the user.
    let (role, active): (String, bool) =
        sqlx::query_as("select role, active from users where id = $1")
            .bind(id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!((role.as_str(), active), ("staff", true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_through_one_replica_is_refused_by_another_within_the_deadline() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;

    let mut settings = app.settings.clone();
    settings.http_addr = "127.0.0.1:0".parse().unwrap();
    let replica_shutdown = CancellationToken::new();
    let _stop_replica = replica_shutdown.clone().drop_guard();
    let replica = ingress_api::startup::Application::build(settings, replica_shutdown)
        .await
        .expect("build the second replica");
    let replica_base = format!("http://{}", replica.local_addr());
    tokio::spawn(replica.serve());
    let on_replica = |token: &str, path: &str| {
        app.http
            .get(format!("{replica_base}{path}"))
            .bearer_auth(token.to_owned())
            .send()
    };

    let (leaver_id, leaver_email) = create_user(&app, &admin, "leaver", "customer").await;
    let leaver = app.login(&leaver_email, PASSWORD).await;
    let (promoted_id, promoted_email) = create_user(&app, &admin, "promoted", "customer").await;
    let promoted = app.login(&promoted_email, PASSWORD).await;
    // The replica accepts both tokens, the admin's too: its start changed
    // nothing that revokes.
    for token in [&leaver, &promoted, &admin] {
        let response = on_replica(token, "/products").await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    let response = app
        .patch(
            &admin,
            &format!("/users/{leaver_id}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .patch(
            &admin,
            &format!("/users/{promoted_id}"),
            json!({"role": "staff"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    until_revoked(&app.http, &replica_base, &leaver).await;
    until_revoked(&app.http, &replica_base, &promoted).await;
    let response = app
        .http
        .post(format!("{replica_base}/orders"))
        .bearer_auth(&leaver)
        .json(&one_order())
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNAUTHORIZED).await;
    // The new token of the promoted user works on the replica, as staff.
    app.product_with_stock(&admin, "REPLICA-1", 0, 0).await;
    let staff = app.login(&promoted_email, PASSWORD).await;
    let response = app
        .http
        .post(format!("{replica_base}/inventory/receive"))
        .bearer_auth(&staff)
        .json(&json!({"sku": "REPLICA-1", "quantity": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = on_replica(&admin, "/users").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_unreachable_revoked_tokens_stay_refused_and_orders_are_taken() {
    let app = TestApp::start_with(&[], false).await;
    let admin = app.admin_token().await;
    let (leaver_id, leaver_email) = create_user(&app, &admin, "leaver", "customer").await;
    let leaver = app.login(&leaver_email, PASSWORD).await;
    let (_, stayer) = app.customer().await;
    let response = app
        .patch(
            &admin,
            &format!("/users/{leaver_id}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    until_revoked(&app.http, &app.base, &leaver).await;

    // Nobody may connect to the test's database, and every connection it
    // had is closed: the ingress's pool finds it unreachable.
    let outage = DatabaseOutage::begin(&app.db.name).await;
    eventually(
        Duration::from_secs(30),
        "the ingress to find the database unreachable",
        || async {
            app.get(&admin, "/users")
                .await
                .status()
                .is_server_error()
                .then_some(())
        },
    )
    .await;

    let body = problem(
        app.post(&leaver, "/orders", one_order()).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(body["detail"], "the token was revoked");
    assert_eq!(
        app.post(&stayer, "/orders", one_order()).await.status(),
        StatusCode::ACCEPTED
    );
    outage.end().await;
}

/// The test database made unreachable: connections refused and closed.
struct DatabaseOutage {
    admin: sqlx::PgConnection,
    name: String,
}

impl DatabaseOutage {
    async fn begin(name: &str) -> Self {
        use sqlx::{Connection, Executor};
        let mut admin = sqlx::PgConnection::connect(&testkit::admin_database_url())
            .await
            .unwrap();
        admin
            .execute(format!("alter database {name} with allow_connections false").as_str())
            .await
            .unwrap();
        sqlx::query(
            "select pg_terminate_backend(pid) from pg_stat_activity
             where datname = $1 and pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&mut admin)
        .await
        .unwrap();
        Self {
            admin,
            name: name.to_owned(),
        }
    }

    async fn end(mut self) {
        use sqlx::Executor;
        self.admin
            .execute(format!("alter database {} with allow_connections true", self.name).as_str())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_users_endpoint_behind_bearer_auth() {
    let app = TestApp::start_with(&[], false).await;
    let document: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, method, statuses) in [
        ("/users", "get", &["200", "401", "403", "422"][..]),
        ("/users", "post", &["201", "401", "403", "409", "422"][..]),
        (
            "/users/{id}",
            "patch",
            &["200", "401", "403", "404", "409", "422"][..],
        ),
        ("/auth/password", "post", &["200", "401", "422"][..]),
    ] {
        let operation = &document["paths"][path][method];
        assert_eq!(
            operation["security"],
            json!([{"bearer": []}]),
            "{method} {path}"
        );
        for status in statuses {
            assert!(
                operation["responses"].get(status).is_some(),
                "{method} {path} {status}"
            );
        }
    }
}
