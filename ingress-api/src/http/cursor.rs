//! Opaque pagination cursors: base64url of the last item's sort key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::ApiError;

fn invalid() -> ApiError {
    ApiError::field("cursor", "is not a cursor this API returned")
}

pub fn encode_text(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

pub fn decode_text(cursor: &str) -> Result<String, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

pub fn encode_time_id(time: DateTime<Utc>, id: Uuid) -> String {
    encode_text(&format!(
        "{}|{id}",
        time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    ))
}

pub fn decode_time_id(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let text = decode_text(cursor)?;
    let (time, id) = text.split_once('|').ok_or_else(invalid)?;
    let time = DateTime::parse_from_rfc3339(time)
        .map_err(|_| invalid())?
        .with_timezone(&Utc);
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((time, id))
}

/// Cuts a page fetched with `limit + 1` rows down to `limit` and answers the
/// next page's cursor (made by `cursor_of` from the page's last item) when
/// the extra row showed there is one.
pub fn next_page<T>(
    items: &mut Vec<T>,
    limit: i64,
    cursor_of: impl Fn(&T) -> String,
) -> Option<String> {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(cursor_of)
    } else {
        None
    }
}
