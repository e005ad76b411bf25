//! The console's two static files, embedded in the binary. Pages link them
//! with a version derived from their content (`?v=`), so they can be cached
//! for a year: a new build that changes one links a new URL.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// Served at `/console/assets/{name}`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
    /// The first hex digits of the body's SHA-256.
    version: LazyLock<String>,
}

impl Asset {
    /// The path pages link, with the version that busts caches.
    pub fn versioned_path(&self) -> String {
        format!("/console/assets/{}?v={}", self.name, *self.version)
    }
}

fn version_of(body: &str) -> String {
    hex::encode(&Sha256::digest(body.as_bytes())[..6])
}

pub static STYLESHEET: Asset = Asset {
    name: "console.css",
    content_type: "text/css; charset=utf-8",
    body: include_str!("../../assets/console/console.css"),
    version: LazyLock::new(|| version_of(include_str!("../../assets/console/console.css"))),
};

pub static SCRIPT: Asset = Asset {
    name: "console.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("../../assets/console/console.js"),
    version: LazyLock::new(|| version_of(include_str!("../../assets/console/console.js"))),
};

/// `GET /console/assets/{name}`: public, cached for a year.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = [&STYLESHEET, &SCRIPT].into_iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.body,
    )
        .into_response()
}
