//! The console as a browser uses it: a client that shows redirects instead
//! of following them, the session cookie, and reading pages' markup.

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::json;
use uuid::Uuid;

use super::TestApp;

/// A client that shows redirects instead of following them.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` header that sets cookie `name`, if any.
pub fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// The value a `Set-Cookie` header gives its cookie.
pub fn cookie_value(header: &str) -> String {
    let pair = header.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

/// The hidden CSRF token of a page's forms.
pub fn csrf_in(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

/// The text of the element that opens with `opening` (up to its first `<`).
pub fn text_after(html: &str, opening: &str) -> Option<String> {
    let start = html.find(opening)?;
    let rest = &html[start..];
    let text_start = rest.find('>')? + 1;
    let text_end = text_start + rest[text_start..].find('<')?;
    Some(rest[text_start..text_end].trim().to_owned())
}

/// A browser on the console: sessions by cookie, redirects not followed.
pub struct Console<'a> {
    pub app: &'a TestApp,
    pub http: reqwest::Client,
}

impl<'a> Console<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            http: browser(),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.http
            .post(self.app.url("/console/login"))
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, session: Option<&str>, path: &str) -> Response {
        let mut request = self.http.get(self.app.url(path));
        if let Some(token) = session {
            request = request.header(COOKIE, format!("orderflow_session={token}"));
        }
        request.send().await.unwrap()
    }

    /// A page as (status, html).
    pub async fn page(&self, session: &str, path: &str) -> (StatusCode, String) {
        let response = self.get(Some(session), path).await;
        (response.status(), response.text().await.unwrap())
    }

    pub async fn post(&self, session: &str, path: &str, form: &[(&str, &str)]) -> Response {
        self.http
            .post(self.app.url(path))
            .header(COOKIE, format!("orderflow_session={session}"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Posts the receive form of `sku` with the session's CSRF token.
    pub async fn receive(&self, session: &str, sku: &str, quantity: &str) -> Response {
        let (_, html) = self
            .page(session, &format!("/console/products/{sku}"))
            .await;
        let csrf = csrf_in(&html);
        self.post(
            session,
            &format!("/console/products/{sku}/receive"),
            &[
                ("quantity", quantity),
                ("location", "main"),
                ("csrf", &csrf),
            ],
        )
        .await
    }
}

/// Registers an account with a known password and gives it `role`.
pub async fn account(app: &TestApp, role: &str) -> (String, String) {
    let email = format!("{role}-{}@example.com", Uuid::new_v4().simple());
    let password = "a-console-password".to_owned();
    let response = app
        .http
        .post(app.url("/auth/register"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    sqlx::query("update users set role = $1 where email = $2")
        .bind(role)
        .bind(&email)
        .execute(&app.db.pool)
        .await
        .unwrap();
    (email, password)
}

/// Rows of the ledger for `sku`.
pub async fn ledger_rows(app: &TestApp, sku: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from stock_movements m join products p on p.id = m.product_id
         where p.sku = $1",
    )
    .bind(sku)
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}
