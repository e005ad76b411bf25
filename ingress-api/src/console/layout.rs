//! The chrome every console page shares (title, navigation, the signed-in
//! user, the assets) and rendering a page as an answer.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use orderflow_core::domain::Role;

use crate::console::assets;
use crate::console::session::ConsoleUser;

/// The sections the main navigation links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Products,
    /// The new-product form, for managers and admins.
    NewProduct,
    Users,
    Orders,
    Webhooks,
    Alerts,
    /// Pages outside the navigation: sign-in, errors.
    None,
}

/// One link of the main navigation.
#[derive(Debug, Clone)]
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    /// Marked `aria-current="page"`.
    pub current: bool,
}

/// Who is signed in, as the page header shows them.
#[derive(Debug, Clone)]
pub struct Account {
    pub email: String,
    /// For the sign-out form.
    pub csrf: String,
}

/// What the shared template needs from every page.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The page's `<title>`, before the console's name.
    pub title: String,
    /// Empty without a signed-in user.
    pub nav: Vec<NavLink>,
    pub account: Option<Account>,
    pub stylesheet: String,
    pub script: String,
}

impl Layout {
    /// The chrome of a page for `user`, or of a page without one. The Users
    /// link is only for admins, the only role that may open it; Alerts is
    /// for every console role (staff and above).
    pub fn new(user: Option<&ConsoleUser>, section: Section, title: impl Into<String>) -> Self {
        let (nav, account) = match user {
            None => (Vec::new(), None),
            Some(user) => {
                let mut nav = vec![
                    NavLink {
                        href: "/console",
                        label: "Dashboard",
                        current: section == Section::Dashboard,
                    },
                    NavLink {
                        href: "/console/products",
                        label: "Products",
                        current: section == Section::Products,
                    },
                ];
                // Orders are for every console role; webhooks for managers
                // and admins, as the API allows.
                nav.push(NavLink {
                    href: "/console/orders",
                    label: "Orders",
                    current: section == Section::Orders,
                });
                if user.auth.role.includes(Role::Manager) {
                    nav.push(NavLink {
                        href: "/console/webhooks",
                        label: "Webhooks",
                        current: section == Section::Webhooks,
                    });
                }
                nav.push(NavLink {
                    href: "/console/alerts",
                    label: "Alerts",
                    current: section == Section::Alerts,
                });
                // Product editing: only roles the catalogue functions let in.
                if user.auth.role.includes(Role::Manager) {
                    nav.push(NavLink {
                        href: "/console/products/new",
                        label: "New product",
                        current: section == Section::NewProduct,
                    });
                }
                if user.is_admin() {
                    nav.push(NavLink {
                        href: "/console/users",
                        label: "Users",
                        current: section == Section::Users,
                    });
                }
                let account = Account {
                    email: user.email.clone(),
                    csrf: user.csrf.clone(),
                };
                (nav, Some(account))
            }
        };
        Layout {
            title: title.into(),
            nav,
            account,
            stylesheet: assets::STYLESHEET.versioned_path(),
            script: assets::SCRIPT.versioned_path(),
        }
    }
}

/// A rendered page answered with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        }
        Err(err) => {
            tracing::error!(%err, "console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

/// An API message ("must be between 1 and 10") as a sentence to show on its
/// own: first letter capitalised, closing full stop.
pub fn sentence(message: &str) -> String {
    let mut chars = message.trim().chars();
    let mut text: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_message_reads_as_a_sentence() {
        assert_eq!(
            sentence("wrong email or password"),
            "Wrong email or password."
        );
        assert_eq!(sentence("retry after 3 s."), "Retry after 3 s.");
        assert_eq!(sentence(""), "");
    }
}
