//! The console's stock forms on the product page (ship, transfer, adjust),
//! over HTTP against a real database and NATS: who may use them, what a
//! valid form changes, and that a refused one changes nothing.

mod support;

use reqwest::header::{COOKIE, LOCATION};
use reqwest::{Response, StatusCode};
use serde_json::json;
use support::console::{cookie_value, csrf_in, ledger_rows, set_cookie, text_after, Console};
use support::TestApp;

/// (on_hand, reserved) of a sku at one location.
async fn level(app: &TestApp, sku: &str, location: &str) -> (i64, i64) {
    sqlx::query_as(
        "select coalesce(sum(s.on_hand), 0)::int8, coalesce(sum(s.reserved), 0)::int8
         from stock_levels s join products p on p.id = s.product_id
         join locations l on l.id = s.location_id where p.sku = $1 and l.code = $2",
    )
    .bind(sku)
    .bind(location)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

/// A product with `stock` at main and a second location `east`.
async fn product_and_two_locations(app: &TestApp, sku: &str, stock: i64) -> String {
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, sku, stock, 1).await;
    let response = app
        .post(
            &admin,
            "/locations",
            json!({"code": "east", "name": "East bin"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    admin
}

/// Posts `form` (plus the session's CSRF token) to the product's
/// `operation` route.
async fn operate(
    console: &Console<'_>,
    session: &str,
    sku: &str,
    operation: &str,
    form: &[(&str, &str)],
) -> Response {
    let (_, html) = console
        .page(session, &format!("/console/products/{sku}"))
        .await;
    let csrf = csrf_in(&html);
    let mut form = form.to_vec();
    form.push(("csrf", &csrf));
    console
        .post(
            session,
            &format!("/console/products/{sku}/{operation}"),
            &form,
        )
        .await
}

/// The flash the product page shows after `response`'s redirect.
async fn flash_after(console: &Console<'_>, session: &str, response: &Response) -> String {
    let flash = cookie_value(&set_cookie(response, "orderflow_flash").expect("a flash"));
    let html = console
        .http
        .get(
            console
                .app
                .url(response.headers()[LOCATION].to_str().unwrap()),
        )
        .header(
            COOKIE,
            format!("orderflow_session={session}; orderflow_flash={flash}"),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text_after(&html, r#"<p id="flash" role="status""#).expect("the flash")
}

/// The opening tag of the element with `id`.
fn tag<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no {id}"));
    let start = html[..start].rfind('<').unwrap();
    let end = start + html[start..].find('>').unwrap();
    &html[start..=end]
}

#[tokio::test]
async fn staff_managers_and_admins_see_the_labelled_stock_forms() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = product_and_two_locations(&app, "OPS-1", 5).await;
    for session in [
        app.user_with_role("staff").await,
        app.user_with_role("manager").await,
        admin,
    ] {
        let (status, html) = console.page(&session, "/console/products/OPS-1").await;
        assert_eq!(status, StatusCode::OK);
        for (form, fields) in [
            ("ship-form", &["ship-quantity", "ship-location"][..]),
            (
                "transfer-form",
                &["transfer-from", "transfer-to", "transfer-quantity"][..],
            ),
            (
                "adjust-form",
                &["adjust-location", "adjust-counted", "adjust-reason"][..],
            ),
        ] {
            assert!(tag(&html, form).contains("method=\"post\""), "{form}");
            for field in fields {
                assert!(
                    html.contains(&format!(r#"<label for="{field}">"#)),
                    "{field}"
                );
            }
        }
        let reasons = &html[html.find(r#"id="adjust-reason""#).unwrap()..];
        let reasons = &reasons[..reasons.find("</select>").unwrap()];
        for reason in ["cycle_count", "damage", "loss", "found"] {
            assert!(
                reasons.contains(&format!(r#"value="{reason}""#)),
                "{reason}"
            );
        }
    }
}

#[tokio::test]
async fn customers_are_refused_the_stock_forms_and_change_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    product_and_two_locations(&app, "OPS-2", 5).await;
    let (_, customer) = app.customer().await;
    // A customer has no page to take a CSRF token from; the role is
    // refused before the token is even looked at.
    let response = console
        .post(
            &customer,
            "/console/products/OPS-2/ship",
            &[("quantity", "1"), ("location", "main"), ("csrf", "00")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("<h1>Not allowed</h1>"));
    assert_eq!(level(&app, "OPS-2", "main").await, (5, 0));
}

#[tokio::test]
async fn a_valid_ship_transfer_and_adjust_change_stock_and_say_so() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    product_and_two_locations(&app, "OPS-3", 10).await;
    let staff = app.user_with_role("staff").await;

    let response = operate(
        &console,
        &staff,
        "OPS-3",
        "ship",
        &[("quantity", "3"), ("location", "main")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console/products/OPS-3");
    assert_eq!(level(&app, "OPS-3", "main").await, (7, 0));
    assert_eq!(
        flash_after(&console, &staff, &response).await,
        "Shipped 3 from main"
    );

    let response = operate(
        &console,
        &staff,
        "OPS-3",
        "transfer",
        &[("from", "main"), ("to", "east"), ("quantity", "4")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(level(&app, "OPS-3", "main").await, (3, 0));
    assert_eq!(level(&app, "OPS-3", "east").await, (4, 0));
    assert_eq!(
        flash_after(&console, &staff, &response).await,
        "Transferred 4 from main to east"
    );

    let response = operate(
        &console,
        &staff,
        "OPS-3",
        "adjust",
        &[("location", "east"), ("counted", "1"), ("reason", "damage")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(level(&app, "OPS-3", "east").await, (1, 0));
    assert_eq!(
        flash_after(&console, &staff, &response).await,
        "Counted 1 at east"
    );
    let reason: String = sqlx::query_scalar(
        "select reason from stock_movements where kind = 'adjust' order by id desc limit 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(reason, "damage");
    // The initial receipt, one ship, two transfer rows, one adjust.
    assert_eq!(ledger_rows(&app, "OPS-3").await, 5);
    assert_eq!(app.ledger_drift().await, 0);
}

#[tokio::test]
async fn more_than_is_available_is_the_forms_error_and_moves_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    product_and_two_locations(&app, "OPS-4", 2).await;
    let staff = app.user_with_role("staff").await;

    for (operation, form) in [
        ("ship", vec![("quantity", "3"), ("location", "main")]),
        (
            "transfer",
            vec![("from", "main"), ("to", "east"), ("quantity", "3")],
        ),
    ] {
        let response = operate(&console, &staff, "OPS-4", operation, &form).await;
        assert_eq!(response.status(), StatusCode::CONFLICT, "{operation}");
        let html = response.text().await.unwrap();
        let alert = text_after(&html, &format!(r#"<p id="{operation}-error" role="alert""#))
            .expect("the form's error");
        assert_eq!(
            alert,
            "Only 2 of OPS-4 available at main (on hand less reserved); 3 asked."
        );
        // What was entered is kept.
        assert!(tag(&html, &format!("{operation}-quantity")).contains(r#"value="3""#));
    }
    assert_eq!(level(&app, "OPS-4", "main").await, (2, 0));
    assert_eq!(level(&app, "OPS-4", "east").await, (0, 0));
    assert_eq!(ledger_rows(&app, "OPS-4").await, 1);
}

#[tokio::test]
async fn each_refused_field_is_shown_beside_it_and_changes_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    product_and_two_locations(&app, "OPS-5", 4).await;
    let manager = app.user_with_role("manager").await;

    for (operation, form, field, message) in [
        (
            "ship",
            vec![("quantity", "abc"), ("location", "main")],
            "ship-quantity",
            "must be between 1 and 1000000000",
        ),
        (
            "ship",
            vec![("quantity", "1"), ("location", "nowhere")],
            "ship-location",
            "no location has code nowhere",
        ),
        (
            "transfer",
            vec![("from", "main"), ("to", "main"), ("quantity", "1")],
            "transfer-to",
            "must differ from from_location",
        ),
        (
            "transfer",
            vec![("from", "main"), ("to", "east"), ("quantity", "0")],
            "transfer-quantity",
            "must be between 1 and 1000000000",
        ),
        (
            "adjust",
            vec![("location", "main"), ("counted", "-1"), ("reason", "loss")],
            "adjust-counted",
            "must be between 0 and 1000000000",
        ),
        (
            "adjust",
            vec![("location", "main"), ("counted", "2"), ("reason", "whim")],
            "adjust-reason",
            "must be one of cycle_count, damage, loss, found",
        ),
    ] {
        let response = operate(&console, &manager, "OPS-5", operation, &form).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}"
        );
        let html = response.text().await.unwrap();
        let error = text_after(
            &html,
            &format!(r#"<p id="{field}-error" class="field-error""#),
        )
        .unwrap_or_else(|| panic!("{field}'s error"));
        assert_eq!(error, message, "{field}");
        let input = tag(&html, field);
        assert!(input.contains(r#"aria-invalid="true""#), "{input}");
        assert!(input.contains(&format!(r#"aria-describedby="{field}-error""#)));
    }
    assert_eq!(level(&app, "OPS-5", "main").await, (4, 0));
    assert_eq!(ledger_rows(&app, "OPS-5").await, 1);
}

#[tokio::test]
async fn a_stock_form_without_the_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    product_and_two_locations(&app, "OPS-6", 4).await;
    let staff = app.user_with_role("staff").await;

    for (operation, form) in [
        ("ship", vec![("quantity", "1"), ("location", "main")]),
        (
            "transfer",
            vec![("from", "main"), ("to", "east"), ("quantity", "1")],
        ),
        (
            "adjust",
            vec![("location", "main"), ("counted", "0"), ("reason", "loss")],
        ),
    ] {
        let response = console
            .post(
                &staff,
                &format!("/console/products/OPS-6/{operation}"),
                &form,
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{operation}");
    }
    assert_eq!(level(&app, "OPS-6", "main").await, (4, 0));
    assert_eq!(ledger_rows(&app, "OPS-6").await, 1);
}
