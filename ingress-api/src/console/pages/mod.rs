//! The console's pages, one module each.

pub mod dashboard;
pub mod flash;
pub mod form;
pub mod login;
pub mod product;
pub mod product_editing;
pub mod products;
pub mod stock_operations;
pub mod users;
