//! W3C Trace Context (`traceparent`) and request ids, and how both travel in
//! NATS message headers from ingress-api through the processor to the
//! notifier.
//!
//! Every hop logs the trace id, so one order's whole path can be found with a
//! single grep, and (when OTLP export is on, see [`crate::otel`]) the same
//! trace id is the exported one. Each hop passes on a child context: the same
//! trace id with the span id of the hop's own work as the parent id.
//!
//! Parsing is strict (version 00, lowercase hex, no all-zero ids), because a
//! header from an untrusted client must either be a valid context or be
//! ignored: a malformed one is replaced by a new trace, never passed on.

use std::fmt;

use async_nats::HeaderMap;

/// The W3C header carrying the trace context, in HTTP and in NATS messages.
pub const TRACEPARENT: &str = "traceparent";

/// The header carrying the request id, in HTTP and in NATS messages.
pub const REQUEST_ID: &str = "x-request-id";

/// The longest request id passed on. A client's id beyond this (or with
/// characters other than visible ASCII) is not carried into the pipeline.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The `sampled` bit of the trace flags.
pub const FLAG_SAMPLED: u8 = 0x01;

/// A 16-byte trace id, never all zeros. Displays as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId([u8; 16]);

/// An 8-byte span (parent) id, never all zeros. Displays as 16 lowercase hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId([u8; 8]);

impl TraceId {
    /// `None` for the all-zero id, which W3C reserves as invalid.
    pub fn from_bytes(bytes: [u8; 16]) -> Option<Self> {
        (bytes != [0; 16]).then_some(Self(bytes))
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// A random, valid id.
    pub fn random() -> Self {
        loop {
            if let Some(id) = Self::from_bytes(rand::random()) {
                return id;
            }
        }
    }
}

impl SpanId {
    /// `None` for the all-zero id, which W3C reserves as invalid.
    pub fn from_bytes(bytes: [u8; 8]) -> Option<Self> {
        (bytes != [0; 8]).then_some(Self(bytes))
    }

    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }

    /// A random, valid id.
    pub fn random() -> Self {
        loop {
            if let Some(id) = Self::from_bytes(rand::random()) {
                return id;
            }
        }
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        buf[2 * i] = DIGITS[usize::from(b >> 4)];
        buf[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
    }
    f.write_str(std::str::from_utf8(&buf[..2 * bytes.len()]).expect("hex digits are ASCII"))
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a `traceparent` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("a traceparent has four dash-separated fields of 2, 32, 16 and 2 hex digits")]
    Shape,
    #[error("hex digits must be lowercase 0-9a-f")]
    Hex,
    #[error("version ff is invalid")]
    Version,
    #[error("the trace id is all zeros")]
    ZeroTraceId,
    #[error("the parent id is all zeros")]
    ZeroParentId,
}

/// One position in a trace: the trace, the span that is the parent of
/// whatever receives this context, and the trace flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    pub trace_id: TraceId,
    pub parent_id: SpanId,
    pub flags: u8,
}

impl TraceContext {
    /// The start of a new trace, sampled.
    pub fn new_root() -> Self {
        Self {
            trace_id: TraceId::random(),
            parent_id: SpanId::random(),
            flags: FLAG_SAMPLED,
        }
    }

    /// The context to hand to the next hop: the same trace and flags, a new
    /// span id standing for this hop's work.
    pub fn child(&self) -> Self {
        Self {
            parent_id: SpanId::random(),
            ..*self
        }
    }

    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// Parses a `traceparent` header value. Version 00 must be exactly
    /// `00-<32 hex>-<16 hex>-<2 hex>`; a later version may append fields
    /// after a dash, which are ignored, as the specification asks.
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let value = value.trim_matches([' ', '\t']);
        let bytes = value.as_bytes();
        if bytes.len() < 55 {
            return Err(ParseError::Shape);
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return Err(ParseError::Shape);
        }
        let mut version = [0u8; 1];
        decode_hex(&bytes[0..2], &mut version)?;
        match version[0] {
            0xff => return Err(ParseError::Version),
            0x00 if bytes.len() != 55 => return Err(ParseError::Shape),
            0x00 => {}
            _ if bytes.len() > 55 && bytes[55] != b'-' => return Err(ParseError::Shape),
            _ => {}
        }
        let mut trace = [0u8; 16];
        decode_hex(&bytes[3..35], &mut trace)?;
        let mut parent = [0u8; 8];
        decode_hex(&bytes[36..52], &mut parent)?;
        let mut flags = [0u8; 1];
        decode_hex(&bytes[53..55], &mut flags)?;
        Ok(Self {
            trace_id: TraceId::from_bytes(trace).ok_or(ParseError::ZeroTraceId)?,
            parent_id: SpanId::from_bytes(parent).ok_or(ParseError::ZeroParentId)?,
            // Only the flags version 00 defines are passed on.
            flags: flags[0] & FLAG_SAMPLED,
        })
    }

    /// Reads the `traceparent` of a NATS message; `None` when it is absent
    /// or invalid.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Option<Self> {
        let value = headers?.get(TRACEPARENT)?;
        Self::parse(value.as_str()).ok()
    }
}

/// `00-<trace id>-<parent id>-<flags>`, the `traceparent` value.
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn decode_hex(digits: &[u8], out: &mut [u8]) -> Result<(), ParseError> {
    fn nibble(d: u8) -> Result<u8, ParseError> {
        match d {
            b'0'..=b'9' => Ok(d - b'0'),
            b'a'..=b'f' => Ok(d - b'a' + 10),
            _ => Err(ParseError::Hex),
        }
    }
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Ok(())
}

/// A request id: the client's `x-request-id`, or one ingress-api made up.
/// Only 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII characters are carried, so
/// nothing a client sends can break a header or a log line downstream.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    pub fn parse(value: &str) -> Option<Self> {
        let ok = !value.is_empty()
            && value.len() <= MAX_REQUEST_ID_LEN
            && value.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reads the `x-request-id` of a NATS message; `None` when it is absent
    /// or not a valid request id.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Option<Self> {
        Self::parse(headers?.get(REQUEST_ID)?.as_str())
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// What travels with a message besides its body: the trace context and the
/// request id that caused it. Either may be missing (a message published by
/// an older build, or by a tool).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageTrace {
    pub context: Option<TraceContext>,
    pub request_id: Option<RequestId>,
}

impl MessageTrace {
    pub fn new(context: TraceContext, request_id: Option<RequestId>) -> Self {
        Self {
            context: Some(context),
            request_id,
        }
    }

    /// Reads both headers of a NATS message.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Self {
        Self {
            context: TraceContext::from_headers(headers),
            request_id: RequestId::from_headers(headers),
        }
    }

    /// Writes both headers (those present) into `headers`.
    pub fn inject(&self, headers: &mut HeaderMap) {
        if let Some(context) = &self.context {
            headers.insert(TRACEPARENT, context.to_string().as_str());
        }
        if let Some(request_id) = &self.request_id {
            headers.insert(REQUEST_ID, request_id.as_str());
        }
    }

    /// The same request id with `context` as the trace context.
    pub fn with_context(&self, context: TraceContext) -> Self {
        Self {
            context: Some(context),
            request_id: self.request_id.clone(),
        }
    }

    pub fn trace_id(&self) -> Option<TraceId> {
        self.context.map(|c| c.trace_id)
    }
}

/// A list of optional values for one log field, `-` standing for a missing
/// one, so it stays aligned with a list of ids logged beside it:
/// `[4bf92f3577b34da6a3ce929d0e0e4736, -]`.
pub struct Aligned<'a, T>(pub &'a [Option<T>]);

impl<T: fmt::Display> fmt::Display for Aligned<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, value) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match value {
                Some(value) => fmt::Display::fmt(value, f)?,
                None => f.write_str("-")?,
            }
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specification_example_parses_and_formats_back_unchanged() {
        let context = TraceContext::parse(EXAMPLE).unwrap();
        assert_eq!(
            context.trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.parent_id.to_string(), "00f067aa0ba902b7");
        assert!(context.sampled());
        assert_eq!(context.to_string(), EXAMPLE);
        let unsampled = TraceContext::parse(&EXAMPLE.replace("-01", "-00")).unwrap();
        assert!(!unsampled.sampled());
    }

    #[test]
    fn malformed_values_are_refused() {
        let cases = [
            ("", ParseError::Shape),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                ParseError::Shape,
            ),
            (&format!("{EXAMPLE}-extra"), ParseError::Shape),
            (&EXAMPLE.replace('-', "_"), ParseError::Shape),
            (&EXAMPLE.replace("4bf9", "4BF9"), ParseError::Hex),
            (&EXAMPLE.replace("4bf9", "4bg9"), ParseError::Hex),
            (&EXAMPLE.replace("-01", "-0x"), ParseError::Hex),
            (&EXAMPLE.replacen("00", "ff", 1), ParseError::Version),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                ParseError::ZeroTraceId,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                ParseError::ZeroParentId,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(TraceContext::parse(value), Err(expected), "{value:?}");
        }
    }

    #[test]
    fn a_later_version_may_append_fields_which_are_ignored() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-adds";
        let context = TraceContext::parse(later).unwrap();
        assert_eq!(context.to_string(), EXAMPLE);
        assert!(TraceContext::parse(&later.replace("01-what", "01what")).is_err());
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags_and_gets_a_new_parent_id() {
        let parent = TraceContext::parse(EXAMPLE).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(child.flags, parent.flags);
        assert_ne!(child.parent_id, parent.parent_id);
        let root = TraceContext::new_root();
        assert!(root.sampled());
        assert_ne!(root.trace_id, parent.trace_id);
    }

    /// Property-style: many random contexts, each formatted and parsed back,
    /// and each with one character changed to one outside the alphabet.
    #[test]
    fn any_valid_context_survives_a_round_trip_and_any_corruption_is_refused() {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        for _ in 0..2000 {
            let context = TraceContext {
                trace_id: TraceId::random(),
                parent_id: SpanId::random(),
                flags: rng.gen_range(0..=1),
            };
            let text = context.to_string();
            assert_eq!(text.len(), 55);
            assert_eq!(TraceContext::parse(&text), Ok(context));

            let mut corrupted = text.clone().into_bytes();
            let at = rng.gen_range(0..corrupted.len());
            corrupted[at] = *b"gGzZ-_ ./".get(rng.gen_range(0..9)).unwrap();
            if corrupted[at] == text.as_bytes()[at] {
                continue;
            }
            let corrupted = String::from_utf8(corrupted).unwrap();
            assert!(
                TraceContext::parse(&corrupted).is_err(),
                "{corrupted} should be refused"
            );
        }
    }

    #[test]
    fn request_ids_are_short_visible_ascii() {
        assert_eq!(RequestId::parse("abc-123").unwrap().as_str(), "abc-123");
        assert!(RequestId::parse("").is_none());
        assert!(RequestId::parse("has space").is_none());
        assert!(RequestId::parse("line\nbreak").is_none());
        assert!(RequestId::parse("é").is_none());
        assert!(RequestId::parse(&"x".repeat(MAX_REQUEST_ID_LEN)).is_some());
        assert!(RequestId::parse(&"x".repeat(MAX_REQUEST_ID_LEN + 1)).is_none());
    }

    #[test]
    fn both_travel_in_nats_headers_and_bad_ones_are_dropped_on_the_way_in() {
        let trace = MessageTrace::new(
            TraceContext::parse(EXAMPLE).unwrap(),
            RequestId::parse("req-1"),
        );
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", "order-1");
        trace.inject(&mut headers);
        assert_eq!(headers.get(TRACEPARENT).unwrap().as_str(), EXAMPLE);
        assert_eq!(MessageTrace::from_headers(Some(&headers)), trace);
        assert_eq!(
            MessageTrace::from_headers(None),
            MessageTrace::default(),
            "a message without headers carries nothing"
        );

        let mut bad = HeaderMap::new();
        bad.insert(TRACEPARENT, "00-zz-nope-01");
        bad.insert(REQUEST_ID, "two words");
        assert_eq!(
            MessageTrace::from_headers(Some(&bad)),
            MessageTrace::default()
        );
    }

    #[test]
    fn aligned_lists_mark_missing_values() {
        let id = TraceContext::parse(EXAMPLE).unwrap().trace_id;
        assert_eq!(
            Aligned(&[Some(id), None]).to_string(),
            "[4bf92f3577b34da6a3ce929d0e0e4736, -]"
        );
        assert_eq!(Aligned::<TraceId>(&[]).to_string(), "[]");
    }
}
