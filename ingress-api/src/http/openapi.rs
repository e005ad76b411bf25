//! `/openapi.json`, generated from the handlers' annotations: each HTTP
//! module documents its own routes, merged here.

use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, Response};
use utoipa::OpenApi;

use crate::http::{
    dead_letters, events, health, inventory, locations, orders, products, reports, users,
    users_admin, webhooks,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(info(
    title = "orderflow",
    description = "Orders queued durably and decided against stock without overselling."
))]
struct Info;

/// The whole document.
pub fn document() -> Document {
    let mut document = Info::openapi();
    for part in [
        users::Api::openapi(),
        users_admin::Api::openapi(),
        products::Api::openapi(),
        locations::Api::openapi(),
        inventory::Api::openapi(),
        orders::Api::openapi(),
        reports::Api::openapi(),
        webhooks::Api::openapi(),
        dead_letters::Api::openapi(),
        events::Api::openapi(),
        health::Api::openapi(),
    ] {
        document.merge(part);
    }
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    for (path, item) in document.paths.paths.iter_mut() {
        // The probes answer without the database or a token.
        let probe = matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics");
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            declare_refusals(operation, probe);
        }
    }
    document
}

/// Declares what every route of a kind may answer besides what its own
/// annotation lists, because extractors and layers shared by all routes
/// answer it: a token check, a JSON body, path and query parameters, the
/// database. Every refusal is problem+json; the annotations say `body =
/// Problem`, which utoipa declares as `application/json`.
fn declare_refusals(operation: &mut Operation, probe: bool) {
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let has_path = parameters
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Path);
    let has_query = parameters
        .iter()
        .any(|p| p.parameter_in == ParameterIn::Query);
    let has_body = operation.request_body.is_some();
    let authenticated = operation
        .security
        .as_ref()
        .is_some_and(|security| !security.is_empty());

    let mut shared = Vec::new();
    if authenticated {
        shared.push(("401", "No valid token"));
    }
    if has_body {
        shared.push(("400", "Malformed JSON"));
        shared.push(("413", "Body over 64 KiB"));
        shared.push(("415", "The body is not application/json"));
        shared.push(("422", "A refused field, named with its limit"));
    }
    if has_query {
        shared.push(("422", "A refused query parameter"));
    }
    if has_path {
        shared.push(("404", "Nothing at this path"));
    }
    if !probe {
        shared.push((
            "503",
            "The database or the queue is unavailable now; see Retry-After",
        ));
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in shared {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(Response::new(description)));
    }
    let problem = Ref::from_schema_name("Problem");
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let is_problem = response.content.is_empty()
            || response.content.values().any(|content| {
                matches!(&content.schema, Some(RefOr::Ref(schema)) if schema.ref_location == problem.ref_location)
            });
        if (status.starts_with('4') || status.starts_with('5')) && is_problem {
            response.content.clear();
            response.content.insert(
                "application/problem+json".to_owned(),
                Content::new(Some(problem.clone())),
            );
        }
    }
}

pub fn router() -> Router<AppState> {
    // Serialized once and shared. axum clones every route's handler for each
    // connection; a handler holding the document by value deep-copied it,
    // about 1.5 MB per open connection (heaptrack under load: 512 client
    // connections held 850 MB).
    let body = Bytes::from(serde_json::to_vec(&document()).expect("the document serializes"));
    Router::new().route(
        "/openapi.json",
        get(move || {
            std::future::ready(([(header::CONTENT_TYPE, "application/json")], body.clone()))
        }),
    )
}
