//! The console's stock forms on the product page (ship, transfer, adjust)
//! and its product editing (new product, edit, archive), over HTTP against
//! a real database and NATS: who may use them, what a valid form changes,
//! and that a refused one changes nothing.

mod support;

use reqwest::header::{COOKIE, LOCATION};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
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
        // A transfer starts from main to another location, not to itself.
        let to = &html[html.find(r#"id="transfer-to""#).unwrap()..];
        let to = &to[..to.find("</select>").unwrap()];
        assert!(to.contains(r#"<option value="east" selected>"#), "{to}");
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

/// A product as `GET /products/{sku}` answers it.
async fn product_json(app: &TestApp, sku: &str) -> Value {
    let admin = app.admin_token().await;
    let response = app.get(&admin, &format!("/products/{sku}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn product_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from products")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// Posts `form` (plus the session's CSRF token, from `page`) to `path`.
async fn submit(
    console: &Console<'_>,
    session: &str,
    page: &str,
    path: &str,
    form: &[(&str, &str)],
) -> Response {
    let (_, html) = console.page(session, page).await;
    let csrf = csrf_in(&html);
    let mut form = form.to_vec();
    form.push(("csrf", &csrf));
    console.post(session, path, &form).await
}

const NEW_PRODUCT: [(&str, &str); 6] = [
    ("sku", "NEW-1"),
    ("name", "Blue mug"),
    ("price", "1250"),
    ("unit", "box"),
    ("category", "kitchen"),
    ("threshold", "4"),
];

#[tokio::test]
async fn managers_and_admins_get_the_editing_controls_and_staff_neither_see_nor_open_them() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "ED-1", 1, 1).await;
    for session in [app.user_with_role("manager").await, admin] {
        let (status, html) = console.page(&session, "/console/products/new").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(r#"<a href="/console/products/new" aria-current="page">"#));
        assert_eq!(html.matches("<h1>").count(), 1);
        for field in [
            "new-sku",
            "new-name",
            "new-price",
            "new-unit",
            "new-category",
            "new-threshold",
        ] {
            assert!(
                html.contains(&format!(r#"<label for="{field}">"#)),
                "{field}"
            );
        }
        let (_, html) = console.page(&session, "/console/products/ED-1").await;
        assert!(tag(&html, "edit-form").contains("/console/products/ED-1/edit"));
        assert!(tag(&html, "edit-name").contains(r#"value="Product ED-1""#));
        assert!(tag(&html, "edit-price").contains(r#"value="1000""#));
        assert!(tag(&html, "archive-confirm").contains(r#"type="checkbox""#));
        assert!(html.contains(r#"<label for="archive-confirm">"#));
    }

    let staff = app.user_with_role("staff").await;
    let (status, html) = console.page(&staff, "/console/products/new").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("<h1>Not allowed</h1>"));
    assert!(!html.contains(r#"href="/console/products/new""#));
    let (status, html) = console.page(&staff, "/console/products/ED-1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(r#"href="/console/products/new""#));
    assert!(!html.contains(r#"id="edit-form""#));
    assert!(!html.contains(r#"id="archive-form""#));
}

#[tokio::test]
async fn a_new_product_is_added_to_the_catalogue_as_entered() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let manager = app.user_with_role("manager").await;
    let response = submit(
        &console,
        &manager,
        "/console/products/new",
        "/console/products/new",
        &NEW_PRODUCT,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console/products/NEW-1");
    assert_eq!(
        flash_after(&console, &manager, &response).await,
        "Product created"
    );
    let product = product_json(&app, "NEW-1").await;
    assert_eq!(product["name"], "Blue mug");
    assert_eq!(product["price_cents"], 1250);
    assert_eq!(product["unit"], "box");
    assert_eq!(product["category"], "kitchen");
    assert_eq!(product["low_stock_threshold"], 4);

    // The same sku again is the API's conflict, shown as the form's error.
    let response = submit(
        &console,
        &manager,
        "/console/products/new",
        "/console/products/new",
        &NEW_PRODUCT,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_after(&html, r#"<p id="new-error" role="alert""#).as_deref(),
        Some("A product with sku NEW-1 already exists.")
    );
    assert_eq!(product_count(&app).await, 1);
}

#[tokio::test]
async fn a_refused_new_product_shows_each_error_by_its_field_and_adds_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let manager = app.user_with_role("manager").await;
    let response = submit(
        &console,
        &manager,
        "/console/products/new",
        "/console/products/new",
        &[
            ("sku", "bad sku"),
            ("name", " "),
            ("price", "-5"),
            ("unit", "each"),
            ("category", ""),
            ("threshold", "7"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    for (field, message) in [
        ("new-sku", "must match [A-Za-z0-9._-]{1,64}"),
        ("new-name", "must be 1 to 200 characters"),
        ("new-price", "must not be negative"),
    ] {
        let error = text_after(
            &html,
            &format!(r#"<p id="{field}-error" class="field-error""#),
        )
        .unwrap_or_else(|| panic!("{field}'s error"));
        assert_eq!(error, message, "{field}");
        assert!(tag(&html, field).contains(r#"aria-invalid="true""#));
    }
    assert!(tag(&html, "new-sku").contains(r#"value="bad sku""#));

    // Text where a number belongs is refused by its field too.
    let mut form = NEW_PRODUCT;
    form[5] = ("threshold", "many");
    let response = submit(
        &console,
        &manager,
        "/console/products/new",
        "/console/products/new",
        &form,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_after(&html, r#"<p id="new-threshold-error" class="field-error""#).as_deref(),
        Some("must be between 0 and 1000000000")
    );
    assert_eq!(product_count(&app).await, 0);
}

#[tokio::test]
async fn an_edit_changes_the_product_and_a_refused_one_changes_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "ED-2", 3, 1).await;
    let manager = app.user_with_role("manager").await;
    let page = "/console/products/ED-2";

    let response = submit(
        &console,
        &manager,
        page,
        "/console/products/ED-2/edit",
        &[
            ("name", "Red mug"),
            ("price", "-1"),
            ("category", "kitchen"),
            ("threshold", "2"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_after(&html, r#"<p id="edit-price-error" class="field-error""#).as_deref(),
        Some("must not be negative")
    );
    assert!(tag(&html, "edit-name").contains(r#"value="Red mug""#));
    assert_eq!(product_json(&app, "ED-2").await["name"], "Product ED-2");

    let response = submit(
        &console,
        &manager,
        page,
        "/console/products/ED-2/edit",
        &[
            ("name", "Red mug"),
            ("price", "990"),
            ("category", "kitchen"),
            ("threshold", "2"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        flash_after(&console, &manager, &response).await,
        "Changes saved"
    );
    let product = product_json(&app, "ED-2").await;
    assert_eq!(product["name"], "Red mug");
    assert_eq!(product["price_cents"], 990);
    assert_eq!(product["category"], "kitchen");
    assert_eq!(product["low_stock_threshold"], 2);
}

#[tokio::test]
async fn archiving_needs_its_box_ticked() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "ED-3", 0, 1).await;
    let manager = app.user_with_role("manager").await;
    let page = "/console/products/ED-3";

    let response = submit(
        &console,
        &manager,
        page,
        "/console/products/ED-3/archive",
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_after(
            &html,
            r#"<p id="archive-confirm-error" class="field-error""#
        )
        .as_deref(),
        Some("tick to confirm archiving")
    );
    assert_eq!(product_json(&app, "ED-3").await["archived"], false);

    let response = submit(
        &console,
        &manager,
        page,
        "/console/products/ED-3/archive",
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        flash_after(&console, &manager, &response).await,
        "Product archived"
    );
    assert_eq!(product_json(&app, "ED-3").await["archived"], true);
    // An archived product offers no edit or archive form.
    let (_, html) = console.page(&manager, page).await;
    assert!(!html.contains(r#"id="edit-form""#));
    assert!(!html.contains(r#"id="archive-form""#));
}

#[tokio::test]
async fn staff_posting_product_edits_are_refused_and_change_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "ED-4", 0, 1).await;
    let staff = app.user_with_role("staff").await;
    let page = "/console/products/ED-4";
    for (path, form) in [
        ("/console/products/new", &NEW_PRODUCT[..]),
        (
            "/console/products/ED-4/edit",
            &[
                ("name", "Staff mug"),
                ("price", "1"),
                ("category", ""),
                ("threshold", "0"),
            ][..],
        ),
        ("/console/products/ED-4/archive", &[("confirm", "yes")][..]),
        // Refused for the role even when the form itself is wrong.
        ("/console/products/ED-4/archive", &[][..]),
    ] {
        let response = submit(&console, &staff, page, path, form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(response
            .text()
            .await
            .unwrap()
            .contains("<h1>Not allowed</h1>"));
    }
    let product = product_json(&app, "ED-4").await;
    assert_eq!(product["name"], "Product ED-4");
    assert_eq!(product["archived"], false);
    assert_eq!(product_count(&app).await, 1);
}

#[tokio::test]
async fn product_edits_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = TestApp::start_with(&[], false).await;
    let console = Console::new(&app);
    let admin = app.admin_token().await;
    app.product_with_stock(&admin, "ED-5", 0, 1).await;
    let manager = app.user_with_role("manager").await;
    for (path, form) in [
        ("/console/products/new", &NEW_PRODUCT[..]),
        (
            "/console/products/ED-5/edit",
            &[
                ("name", "Sneaky mug"),
                ("price", "1"),
                ("category", ""),
                ("threshold", "0"),
            ][..],
        ),
        ("/console/products/ED-5/archive", &[("confirm", "yes")][..]),
    ] {
        let response = console.post(&manager, path, form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let product = product_json(&app, "ED-5").await;
    assert_eq!(product["name"], "Product ED-5");
    assert_eq!(product["archived"], false);
    assert_eq!(product_count(&app).await, 1);
}

#[tokio::test]
async fn a_count_below_what_is_reserved_is_the_adjust_forms_error_and_changes_nothing() {
    let app = TestApp::start_with(&[], true).await;
    let console = Console::new(&app);
    product_and_two_locations(&app, "OPS-7", 5).await;
    let (_, customer) = app.customer().await;
    app.place(&customer, json!([{"sku": "OPS-7", "quantity": 3}]))
        .await;
    app.wait_decided(1).await;
    assert_eq!(level(&app, "OPS-7", "main").await, (5, 3));
    let staff = app.user_with_role("staff").await;

    let response = operate(
        &console,
        &staff,
        "OPS-7",
        "adjust",
        &[("location", "main"), ("counted", "2"), ("reason", "loss")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_after(&html, r#"<p id="adjust-error" role="alert""#).as_deref(),
        Some("3 of OPS-7 are reserved at main for confirmed orders; a count of 2 is below that.")
    );
    assert!(tag(&html, "adjust-counted").contains(r#"value="2""#));
    assert!(tag(&html, "adjust-reason").contains(r#"aria-describedby="adjust-reason-error""#));
    assert_eq!(level(&app, "OPS-7", "main").await, (5, 3));
}
