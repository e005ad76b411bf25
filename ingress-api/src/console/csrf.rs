//! The CSRF token: every console form that changes something carries it in a
//! hidden `csrf` field, and every such POST (sign-in aside) is refused with
//! 403 without it. It is an HMAC of the session's token under the JWT
//! secret: bound to the session, unguessable without the secret, and
//! nothing to store. The session cookie is `SameSite=Strict` as well; the
//! token also covers browsers that ignore that.

use crate::state::AppState;

/// Keeps these tags apart from any other tag made with the same secret.
const PURPOSE: &str = "orderflow console csrf";

/// The CSRF token of the session whose cookie holds `session_token`.
pub fn token_for(state: &AppState, session_token: &str) -> String {
    hex::encode(state.tokens.tag(PURPOSE, session_token))
}

/// Whether `presented` is the CSRF token of the session.
pub fn matches(state: &AppState, session_token: &str, presented: &str) -> bool {
    hex::decode(presented.trim())
        .is_ok_and(|bytes| state.tokens.tag_matches(PURPOSE, session_token, &bytes))
}
