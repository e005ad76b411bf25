//! `sqlx::migrate!` embeds `migrations/` when this crate compiles; without
//! this, adding a migration would not rebuild the crate and services and
//! tests would run without it.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
