//! `GET /console`: today's orders by status, orders decided per minute over
//! the last ten minutes, the queue, the low-stock count (the figures of
//! `GET /dashboard`), and the live feed the script fills.

use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use crate::console::layout::{render, Layout, Section};
use crate::console::problem;
use crate::console::session::ConsoleUser;
use crate::http::reports::{self, MinuteCount, StatusCount};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    layout: Layout,
    orders_today: Vec<StatusCount>,
    decided_per_minute: Vec<MinuteCount>,
    /// The queue depth sentence.
    queue: String,
    low_stock: i64,
}

pub async fn show(State(state): State<AppState>, user: ConsoleUser) -> Response {
    let figures = match reports::dashboard_figures(&state, &user.auth).await {
        Ok(figures) => figures,
        Err(err) => return problem::page(Some(&user), &err),
    };
    let decided_per_minute = match reports::decided_per_minute(&state, &user.auth).await {
        Ok(minutes) => minutes,
        Err(err) => return problem::page(Some(&user), &err),
    };
    let queue = match state.queue.backlog().await {
        Ok(backlog) => match backlog.oldest_waited {
            None => "Queue depth: 0. No order is waiting.".to_owned(),
            Some(waited) => format!(
                "Queue depth: {}. The oldest pending order has waited {}.",
                backlog.commands,
                duration_words(waited)
            ),
        },
        Err(err) => {
            tracing::warn!(err = err.reason(), "queue depth for the console");
            "Queue depth: unknown, the queue cannot be reached right now.".to_owned()
        }
    };
    render(
        StatusCode::OK,
        &DashboardPage {
            layout: Layout::new(Some(&user), Section::Dashboard, "Dashboard"),
            orders_today: figures.orders_today,
            decided_per_minute,
            queue,
            low_stock: figures.stock.low_stock,
        },
    )
}

/// A wait as people say it: "12 s", "3 min 5 s", "2 h 10 min".
fn duration_words(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_reads_in_the_largest_sensible_units() {
        assert_eq!(duration_words(Duration::from_millis(800)), "0 s");
        assert_eq!(duration_words(Duration::from_secs(59)), "59 s");
        assert_eq!(duration_words(Duration::from_secs(185)), "3 min 5 s");
        assert_eq!(duration_words(Duration::from_secs(7800)), "2 h 10 min");
    }
}
