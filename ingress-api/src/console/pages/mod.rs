//! The console's pages, one module each.

pub mod alerts;
pub mod dashboard;
pub mod dead_letters;
pub mod flash;
pub mod form;
pub mod login;
pub mod order;
pub mod orders;
pub mod product;
pub mod product_editing;
pub mod products;
pub mod stock_operations;
pub mod user_forms;
pub mod users;
pub mod webhook;
pub mod webhooks;
