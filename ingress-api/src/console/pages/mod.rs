//! The console's pages, one module each.

pub mod alerts;
pub mod dashboard;
pub mod login;
pub mod product;
pub mod products;
pub mod user_forms;
pub mod users;
