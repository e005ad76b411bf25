//! One-shot notices after a console action ("Fulfilment queued"), carried
//! across the 303 redirect in a short-lived cookie. The cookie holds only a
//! code, never text, so a tampered cookie can show nothing but one of these
//! fixed sentences, or nothing at all.

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};

use crate::console::session;
use crate::state::AppState;

/// The cookie carrying a notice's code to the page redirected to.
const COOKIE: &str = "orderflow_notice";

/// Seconds a notice waits for the page it was meant for.
const MAX_AGE_SECONDS: u64 = 60;

/// What an action did, as the page after it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    FulfilmentQueued,
    CancellationQueued,
    WebhookRegistered,
    PingQueued,
    ReplayQueued,
}

impl Notice {
    const ALL: [Notice; 5] = [
        Notice::FulfilmentQueued,
        Notice::CancellationQueued,
        Notice::WebhookRegistered,
        Notice::PingQueued,
        Notice::ReplayQueued,
    ];

    fn code(self) -> &'static str {
        match self {
            Notice::FulfilmentQueued => "fulfil",
            Notice::CancellationQueued => "cancel",
            Notice::WebhookRegistered => "webhook",
            Notice::PingQueued => "ping",
            Notice::ReplayQueued => "replay",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Notice::FulfilmentQueued => "Fulfilment queued",
            Notice::CancellationQueued => "Cancellation queued",
            Notice::WebhookRegistered => "Webhook registered",
            Notice::PingQueued => "Ping queued",
            Notice::ReplayQueued => "Replay queued",
        }
    }

    fn decode(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|notice| notice.code() == code)
    }
}

/// A 303 to `path` that shows `notice` there once.
pub fn redirect(state: &AppState, path: &str, notice: Notice) -> Response {
    let mut response = Redirect::to(path).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(state, COOKIE, notice.code(), MAX_AGE_SECONDS),
    );
    response
}

/// The notice the request carries, if any.
pub fn read(headers: &HeaderMap) -> Option<Notice> {
    session::cookie(headers, COOKIE).and_then(Notice::decode)
}

/// `response` with the notice cookie cleared when one was shown, so a
/// reload does not show it again.
pub fn consume(state: &AppState, shown: Option<Notice>, mut response: Response) -> Response {
    if shown.is_some() {
        response
            .headers_mut()
            .append(header::SET_COOKIE, session::clear_cookie(state, COOKIE));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_survives_its_code_and_anything_else_is_dropped() {
        for notice in Notice::ALL {
            assert_eq!(Notice::decode(notice.code()), Some(notice));
        }
        assert_eq!(Notice::decode("<script>"), None);
        assert_eq!(Notice::decode(""), None);
    }
}
