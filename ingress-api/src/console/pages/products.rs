//! `GET /console/products`: the catalogue search of `GET /products`, with a
//! search box, a category picker and a low-stock switch.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::console::layout::{render, Layout, Section};
use crate::console::problem;
use crate::console::session::ConsoleUser;
use crate::error::ApiError;
use crate::http::products::{self, ProductQuery, ProductView};
use crate::state::AppState;

/// Products a page shows.
const PAGE_SIZE: i64 = 100;

#[derive(Template)]
#[template(path = "console/products.html")]
struct ProductsPage {
    layout: Layout,
    filter: ProductFilter,
    categories: Vec<String>,
    products: Vec<ProductView>,
    next_page: Option<String>,
}

/// The search form's fields, as the browser sends them: empty fields mean
/// no filter, the checkbox is present only when ticked.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProductFilter {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub category: String,
    /// `1` when only low-stock products are wanted.
    pub low: Option<String>,
    pub cursor: Option<String>,
}

impl ProductFilter {
    fn low_only(&self) -> bool {
        self.low.is_some()
    }

    fn query(&self) -> ProductQuery {
        let given = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        ProductQuery {
            search: given(&self.q),
            category: given(&self.category),
            low_stock: self.low_only().then_some(true),
            include_archived: None,
            cursor: self.cursor.clone(),
            limit: Some(PAGE_SIZE),
        }
    }

    /// The link to the page after this one.
    fn next_page(&self, cursor: String) -> String {
        let mut pairs = vec![("q", self.q.clone()), ("category", self.category.clone())];
        if self.low_only() {
            pairs.push(("low", "1".to_owned()));
        }
        pairs.push(("cursor", cursor));
        format!(
            "/console/products?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    filter: Result<Query<ProductFilter>, QueryRejection>,
) -> Response {
    let Ok(Query(filter)) = filter else {
        return problem::page(
            Some(&user),
            &ApiError::field("query", "must be the search form's q, category and low"),
        );
    };
    let page = match products::search_products(&state, &user.auth, filter.query()).await {
        Ok(page) => page,
        Err(err) => return problem::page(Some(&user), &err),
    };
    let categories = match products::categories(&state, &user.auth).await {
        Ok(categories) => categories,
        Err(err) => return problem::page(Some(&user), &err),
    };
    let next_page = page.next_cursor.map(|cursor| filter.next_page(cursor));
    render(
        StatusCode::OK,
        &ProductsPage {
            layout: Layout::new(Some(&user), Section::Products, "Products"),
            filter,
            categories,
            products: page.items,
            next_page,
        },
    )
}
