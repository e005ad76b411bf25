//! ingress-api: takes orders over HTTP and queues them durably in JetStream;
//! serves the catalogue, stock receipts, accounts and order status.
//!
//! - [`startup`]: [`startup::Application`], built from settings and served
//!   until shutdown; [`startup::Application::build`] binds first so tests can
//!   ask for port 0.
//! - [`http`]: the routers, one per resource, and `/openapi.json`.
//! - [`console`]: the web console for staff, managers and admins, under
//!   `/console`, on the same functions as the JSON API.
//! - [`auth`]: argon2 passwords, HS256 access tokens, the `AuthUser` extractor.
//! - [`queue`]: publishing to and reading from the ORDERS stream.
//! - [`pending`]: recording accepted orders as pending, off the request path.
//! - [`order_records`]: reading orders from the database.
//! - [`stock`]: the locking and ledger rules of staff stock operations.
//! - [`error`]: `ApiError`, answered as problem+json.
//! - [`json_body`]: the JSON body extractor that names refused fields.
//! - [`query_params`]: the query string extractor, refusing as problem+json.
//! - [`path_params`]: the path parameter extractor, refusing as problem+json.
//! - [`server`]: the connection loop, with the connection and header limits.
//! - [`state`]: the shared `AppState`.

pub mod auth;
pub mod console;
pub mod error;
pub mod http;
pub mod json_body;
pub mod order_records;
pub mod path_params;
pub mod pending;
pub mod query_params;
pub mod queue;
pub mod server;
pub mod startup;
pub mod state;
pub mod stock;
