//! The console's pages, one module each.

pub mod dashboard;
pub mod login;
pub mod product;
pub mod products;
pub mod stock_operations;
pub mod users;
