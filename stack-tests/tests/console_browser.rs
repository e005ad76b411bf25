//! The web console in a real headless Chromium, against the real services:
//! signing in, a manager's dashboard following a staff member's stock
//! receipt live in a second window, a staff member kept out of the users
//! page, a form error shown by its field, the keyboard's first stop, and a
//! phone-sized screen.
//!
//! Screenshots of the pages go to `target/console-screenshots/`; with
//! `ORDERFLOW_UPDATE_SCREENSHOTS=1` also to `docs/screenshots/`, which the
//! README shows.

use std::path::PathBuf;

use serde_json::{json, Value};
use stack_tests::browser::{Browser, Chromedriver};
use stack_tests::{repo_root, Api, Stack};
use uuid::Uuid;

const PASSWORD: &str = "console-test-password";

/// The stack, its chromedriver, and a product with stock.
struct Console {
    stack: Stack,
    driver: Chromedriver,
    api: Api,
    admin: String,
    sku: String,
}

impl Console {
    async fn start() -> Self {
        let stack = Stack::start().await.unwrap();
        let api = Api::new(stack.api_url());
        let admin = api
            .login(&stack.admin_email, &stack.admin_password)
            .await
            .unwrap();
        let sku = format!("CONSOLE-{}", &Uuid::new_v4().simple().to_string()[..6]).to_uppercase();
        api.product_with_stock(&admin, &sku, 50, 5).await.unwrap();
        let driver = Chromedriver::start().await.unwrap();
        Self {
            stack,
            driver,
            api,
            admin,
            sku,
        }
    }

    /// A new account with `role`; returns its email.
    async fn user(&self, role: &str) -> String {
        let email = format!("{role}-{}@example.com", Uuid::new_v4().simple());
        self.api
            .post(
                &self.admin,
                "/users",
                json!({"email": email, "password": PASSWORD, "role": role}),
            )
            .await
            .unwrap()
            .expect(reqwest::StatusCode::CREATED, "create the user")
            .unwrap();
        email
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stack.api_url())
    }

    /// A browser window signed in as `email`, on the dashboard.
    async fn signed_in(&self, email: &str, password: &str, width: u32, height: u32) -> Browser {
        let browser = self.driver.browser(width, height).await.unwrap();
        browser.goto(&self.url("/console")).await.unwrap();
        // Not signed in: the console sends the browser to its sign-in page.
        browser.find("#login-form").await.unwrap();
        browser
            .fill(&browser.find("#email").await.unwrap(), email)
            .await
            .unwrap();
        browser
            .fill(&browser.find("#password").await.unwrap(), password)
            .await
            .unwrap();
        browser
            .click(
                &browser
                    .find("#login-form button[type=submit]")
                    .await
                    .unwrap(),
            )
            .await
            .unwrap();
        browser.wait_for_text("h1", &["Dashboard"]).await.unwrap();
        browser
    }
}

/// Saves a screenshot under target/ and, when asked, for the README.
async fn screenshot(browser: &Browser, name: &str) {
    let file = format!("{name}.png");
    let target = repo_root().join("target/console-screenshots").join(&file);
    browser.screenshot(&target).await.unwrap();
    if std::env::var_os("ORDERFLOW_UPDATE_SCREENSHOTS").is_some() {
        let docs: PathBuf = repo_root().join("docs/screenshots").join(&file);
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        std::fs::copy(&target, &docs).unwrap();
    }
}

async fn nav_links(browser: &Browser) -> Vec<String> {
    let mut links = Vec::new();
    for link in browser.find_all("nav[aria-label=Main] a").await.unwrap() {
        links.push(browser.text(&link).await.unwrap());
    }
    links
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_shows_the_dashboard_and_a_wrong_password_an_alert() {
    let console = Console::start().await;
    let manager = console.user("manager").await;

    let browser = console.driver.browser(1280, 900).await.unwrap();
    browser.goto(&console.url("/console/login")).await.unwrap();
    screenshot(&browser, "sign-in").await;
    browser
        .fill(&browser.find("#email").await.unwrap(), &manager)
        .await
        .unwrap();
    browser
        .fill(
            &browser.find("#password").await.unwrap(),
            "not the password",
        )
        .await
        .unwrap();
    browser
        .click(
            &browser
                .find("#login-form button[type=submit]")
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let alert = browser.find("#login-error").await.unwrap();
    assert_eq!(
        browser.attribute(&alert, "role").await.unwrap().as_deref(),
        Some("alert")
    );
    drop(browser);

    let browser = console.signed_in(&manager, PASSWORD, 1280, 900).await;
    for part in [
        "#orders-today",
        "#queue-depth",
        "#low-stock-count",
        "#live-feed",
    ] {
        browser.find(part).await.unwrap();
    }
    assert!(!nav_links(&browser).await.iter().any(|l| l == "Users"));
    screenshot(&browser, "dashboard").await;

    browser
        .goto(&console.url("/console/products"))
        .await
        .unwrap();
    browser
        .wait_for_text("#products", &[&console.sku])
        .await
        .unwrap();
    screenshot(&browser, "products").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_by_staff_appears_on_the_managers_dashboard_without_a_reload() {
    let console = Console::start().await;
    let (manager, staff) = (console.user("manager").await, console.user("staff").await);
    let watching = console.signed_in(&manager, PASSWORD, 1280, 900).await;
    // A mark on the page: a reload would wipe it.
    watching
        .execute("window.orderflowMark = 'unchanged'; return true;", vec![])
        .await
        .unwrap();

    let working = console.signed_in(&staff, PASSWORD, 1280, 900).await;
    working
        .goto(&console.url(&format!("/console/products/{}", console.sku)))
        .await
        .unwrap();
    working
        .fill(&working.find("#receive-quantity").await.unwrap(), "7")
        .await
        .unwrap();
    working
        .click(
            &working
                .find("#receive-form button[type=submit]")
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    working
        .wait_for_text("#flash", &["Received", "7"])
        .await
        .unwrap();
    working
        .wait_for_text("#stock-levels", &["57"])
        .await
        .unwrap();
    screenshot(&working, "product").await;

    // 50 in stock before, 7 received: the manager's feed says 57.
    let entry = watching
        .wait_for_text(
            "#live-feed li[data-event-type='stock.changed']",
            &[&console.sku, "57"],
        )
        .await
        .unwrap();
    let mark: Value = watching
        .execute("return window.orderflowMark || null;", vec![])
        .await
        .unwrap();
    assert_eq!(mark, json!("unchanged"), "the dashboard reloaded ({entry})");
    screenshot(&watching, "dashboard-live").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_see_no_users_link_and_are_refused_the_users_page() {
    let console = Console::start().await;
    let staff = console.user("staff").await;
    let browser = console.signed_in(&staff, PASSWORD, 1280, 900).await;
    let links = nav_links(&browser).await;
    assert!(links.iter().any(|l| l == "Products"), "{links:?}");
    assert!(!links.iter().any(|l| l == "Users"), "{links:?}");
    browser.goto(&console.url("/console/users")).await.unwrap();
    browser.wait_for_text("h1", &["Not allowed"]).await.unwrap();
    assert!(browser.find_all("#users").await.unwrap().is_empty());

    // The admin does see it.
    let admin = console
        .signed_in(
            &console.stack.admin_email,
            &console.stack.admin_password,
            1280,
            900,
        )
        .await;
    assert!(nav_links(&admin).await.iter().any(|l| l == "Users"));
    admin.goto(&console.url("/console/users")).await.unwrap();
    admin.wait_for_text("#users", &[&staff]).await.unwrap();
    screenshot(&admin, "users").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_quantity_is_shown_by_its_field_and_nothing_is_received() {
    let console = Console::start().await;
    let staff = console.user("staff").await;
    let browser = console.signed_in(&staff, PASSWORD, 1280, 900).await;
    browser
        .goto(&console.url(&format!("/console/products/{}", console.sku)))
        .await
        .unwrap();
    let quantity = browser.find("#receive-quantity").await.unwrap();
    browser.fill(&quantity, "0").await.unwrap();
    browser
        .click(
            &browser
                .find("#receive-form button[type=submit]")
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let error = browser.find("#receive-quantity-error").await.unwrap();
    let message = browser.text(&error).await.unwrap();
    assert!(!message.trim().is_empty(), "an empty field error");
    let quantity = browser.find("#receive-quantity").await.unwrap();
    assert_eq!(
        browser
            .attribute(&quantity, "aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    let described = browser
        .attribute(&quantity, "aria-describedby")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(described.contains("receive-quantity-error"), "{described}");
    // The value entered is kept, for the user to correct.
    assert_eq!(
        browser
            .attribute(&quantity, "value")
            .await
            .unwrap()
            .as_deref(),
        Some("0")
    );
    screenshot(&browser, "receive-error").await;

    let product = console
        .api
        .get(&console.admin, &format!("/products/{}", console.sku))
        .await
        .unwrap()
        .expect(reqwest::StatusCode::OK, "read the product")
        .unwrap();
    assert_eq!(product["on_hand"], 50, "stock changed: {product}");
}

/// Opens `url` and checks that the page needs no sideways scrolling: wide
/// tables scroll inside their wrapper, not the page.
async fn assert_fits_the_screen(browser: &Browser, url: &str) {
    browser.goto(url).await.unwrap();
    browser.find("h1").await.unwrap();
    let widths: Value = browser
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        widths[0].as_u64() <= widths[1].as_u64(),
        "{url} is wider than the screen: {widths}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_tab_reaches_the_skip_link_and_a_phone_screen_needs_no_sideways_scrolling() {
    let console = Console::start().await;
    let manager = console.user("manager").await;
    let phone = console.signed_in(&manager, PASSWORD, 375, 740).await;
    let width: Value = phone
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap();
    assert_eq!(
        width,
        json!(375),
        "the phone-sized screen is not phone-sized"
    );

    phone.press("\u{E004}").await.unwrap();
    let focused: Value = phone
        .execute(
            "const a = document.activeElement; return {href: a.getAttribute('href'), text: a.textContent};",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focused["href"], "#main", "first Tab stop: {focused}");

    for path in [
        "/console",
        "/console/products",
        &format!("/console/products/{}", console.sku),
        "/console/alerts",
    ] {
        assert_fits_the_screen(&phone, &console.url(path)).await;
    }
    // The users page, with forms in every row of its table, is an admin's.
    let admin_phone = console
        .signed_in(
            &console.stack.admin_email,
            &console.stack.admin_password,
            375,
            740,
        )
        .await;
    assert_fits_the_screen(&admin_phone, &console.url("/console/users")).await;
    phone.goto(&console.url("/console")).await.unwrap();
    phone.find("#live-feed").await.unwrap();
    screenshot(&phone, "dashboard-phone").await;
}
