//! The console's pages, one module each.

pub mod alerts;
pub mod dashboard;
pub mod dead_letters;
pub mod login;
pub mod order;
pub mod orders;
pub mod product;
pub mod products;
pub mod user_forms;
pub mod users;
pub mod webhook;
pub mod webhooks;
