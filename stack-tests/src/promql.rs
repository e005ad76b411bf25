//! Just enough PromQL structure to check an alert's expression against live
//! data: its operands around `and`, `or` and `unless`, each without the
//! threshold comparison that makes it an alert condition.
//!
//! `max(orderflow_outbox_backlog) > 1000 or (max(orderflow_outbox_backlog) > 0
//! and sum(increase(orderflow_outbox_published_total[10m])) == 0)` becomes
//! `max(orderflow_outbox_backlog)`, `max(orderflow_outbox_backlog)` and
//! `sum(increase(orderflow_outbox_published_total[10m]))`: three queries that
//! must return data on a healthy stack, though the alert itself must not.
//! A threshold compared with a wrong metric name or label stays silent
//! forever; evaluated without its threshold, it comes back empty.

/// The set operators, lowest precedence in PromQL, split on first.
const SET_OPERATORS: [&str; 3] = ["or", "unless", "and"];
/// Comparison operators, longest first so `>=` is not read as `>`.
const COMPARISONS: [&str; 6] = ["==", "!=", ">=", "<=", ">", "<"];

/// What one operand of an alert expression is, for a data check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// An expression that must return data.
    Query(String),
    /// `absent(<selector>)`: returns data only when the selector does not,
    /// so the selector itself is what must return data on a healthy stack.
    Absent(String),
    /// `vector(...)` or a number: a constant, nothing to check.
    Constant(String),
}

/// The operands of `expr`, each stripped of a top-level comparison with a
/// number. An operand that compares two expressions gives both.
pub fn operands(expr: &str) -> Vec<Operand> {
    let mut out = Vec::new();
    collect(expr.trim(), &mut out);
    out
}

fn collect(expr: &str, out: &mut Vec<Operand>) {
    let expr = strip_outer_parens(expr.trim());
    for operator in SET_OPERATORS {
        let parts = split_top_level_word(expr, operator);
        if parts.len() > 1 {
            for part in parts {
                collect(strip_matching_modifier(part), out);
            }
            return;
        }
    }
    if let Some((left, right)) = split_last_comparison(expr) {
        for side in [left, right] {
            let side = strip_outer_parens(side.trim());
            let side = side.strip_prefix("bool ").unwrap_or(side).trim();
            if side.parse::<f64>().is_ok() {
                continue;
            }
            collect(side, out);
        }
        return;
    }
    out.push(classify(expr));
}

fn classify(expr: &str) -> Operand {
    if expr.parse::<f64>().is_ok() {
        return Operand::Constant(expr.to_owned());
    }
    if let Some(inner) = call_argument(expr, "absent") {
        return Operand::Absent(inner.trim().to_owned());
    }
    if call_argument(expr, "vector").is_some() {
        return Operand::Constant(expr.to_owned());
    }
    Operand::Query(expr.to_owned())
}

/// `inner` when `expr` is exactly `function(inner)`.
fn call_argument<'a>(expr: &'a str, function: &str) -> Option<&'a str> {
    let rest = expr.strip_prefix(function)?.trim_start();
    let inner = rest.strip_prefix('(')?;
    (matching_close(rest, 0) == Some(rest.len() - 1)).then(|| &inner[..inner.len() - 1])
}

/// `expr` without parentheses that enclose all of it.
fn strip_outer_parens(mut expr: &str) -> &str {
    while expr.starts_with('(') && matching_close(expr, 0) == Some(expr.len() - 1) {
        expr = expr[1..expr.len() - 1].trim();
    }
    expr
}

/// A set operator's right side may start with `on(...)` or `ignoring(...)`.
fn strip_matching_modifier(part: &str) -> &str {
    let part = part.trim();
    for modifier in ["on", "ignoring"] {
        if let Some(rest) = part.strip_prefix(modifier) {
            let rest = rest.trim_start();
            if rest.starts_with('(') {
                if let Some(close) = matching_close(rest, 0) {
                    return rest[close + 1..].trim();
                }
            }
        }
    }
    part
}

/// The byte index of the bracket closing the one at `open`.
fn matching_close(expr: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (index, byte, _) in scan(expr) {
        if index < open {
            continue;
        }
        match byte {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
    }
    None
}

/// Every byte outside string literals, with its index and whether it is at
/// bracket depth 0.
fn scan(expr: &str) -> Vec<(usize, u8, bool)> {
    let bytes = expr.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    for (index, &byte) in bytes.iter().enumerate() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if byte == b'\\' && q != b'`' {
                escaped = true;
            } else if byte == q {
                quote = None;
            }
            continue;
        }
        match byte {
            b'"' | b'\'' | b'`' => {
                quote = Some(byte);
                continue;
            }
            b'(' | b'[' | b'{' => {
                out.push((index, byte, depth == 0));
                depth += 1;
                continue;
            }
            b')' | b']' | b'}' => {
                depth -= 1;
                out.push((index, byte, depth == 0));
                continue;
            }
            _ => {}
        }
        out.push((index, byte, depth == 0));
    }
    out
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b':'
}

/// `expr` split at every top-level occurrence of the keyword `word`.
fn split_top_level_word<'a>(expr: &'a str, word: &str) -> Vec<&'a str> {
    let bytes = expr.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    for (index, _, top) in scan(expr) {
        if !top || index < start || !expr[index..].starts_with(word) {
            continue;
        }
        let end = index + word.len();
        let before = index.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(end).copied();
        if before.is_some_and(is_word_byte) || after.is_some_and(is_word_byte) {
            continue;
        }
        parts.push(&expr[start..index]);
        start = end;
    }
    parts.push(&expr[start..]);
    parts
}

/// The two sides of the last top-level comparison in `expr`, if any.
/// Comparisons bind less tightly than arithmetic, so in `a / b > 0.05` the
/// last comparison splits `a / b` from `0.05`.
fn split_last_comparison(expr: &str) -> Option<(&str, &str)> {
    let mut found = None;
    let scanned = scan(expr);
    let mut skip_until = 0;
    for (index, byte, top) in scanned {
        if !top || index < skip_until || !matches!(byte, b'=' | b'!' | b'>' | b'<') {
            continue;
        }
        // `=~` and `!~` match no operator here: they only occur in braces.
        let Some(operator) = COMPARISONS
            .iter()
            .find(|op| expr[index..].starts_with(**op))
        else {
            continue;
        };
        found = Some((index, operator.len()));
        skip_until = index + operator.len();
    }
    let (index, len) = found?;
    Some((&expr[..index], &expr[index + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queries(expr: &str) -> Vec<Operand> {
        operands(expr)
    }

    fn q(s: &str) -> Operand {
        Operand::Query(s.to_owned())
    }

    #[test]
    fn a_threshold_is_stripped_from_a_plain_comparison() {
        assert_eq!(queries("up{job=~\"a|b\"} == 0"), [q("up{job=~\"a|b\"}")]);
        assert_eq!(
            queries("time() - max(orderflow_ledger_reconciled_timestamp_seconds) > 600"),
            [q(
                "time() - max(orderflow_ledger_reconciled_timestamp_seconds)"
            )]
        );
        assert_eq!(queries("x >= bool 3"), [q("x")]);
    }

    #[test]
    fn set_operators_split_only_at_the_top_level() {
        let expr = "(sum(rate(x{status=~\"5..\"}[5m])) or vector(0)) / sum(rate(x[5m])) > 0.05 \
                    and sum(increase(y[15m])) >= 100";
        assert_eq!(
            queries(expr),
            [
                q("(sum(rate(x{status=~\"5..\"}[5m])) or vector(0)) / sum(rate(x[5m]))"),
                q("sum(increase(y[15m]))"),
            ]
        );
    }

    #[test]
    fn parenthesised_operands_are_split_again() {
        let expr = "max(b) > 1000 or (max(b) > 0 and sum(increase(p[10m])) == 0)";
        assert_eq!(
            queries(expr),
            [q("max(b)"), q("max(b)"), q("sum(increase(p[10m]))")]
        );
    }

    #[test]
    fn absent_and_constants_are_told_apart() {
        assert_eq!(
            queries("absent(up{job=\"a\"}) or absent(up{job=\"b\"}) or vector(1)"),
            [
                Operand::Absent("up{job=\"a\"}".into()),
                Operand::Absent("up{job=\"b\"}".into()),
                Operand::Constant("vector(1)".into()),
            ]
        );
    }

    #[test]
    fn words_inside_names_labels_and_strings_do_not_split() {
        assert_eq!(
            queries(
                "orderflow_orders_total{reason=\"x and y\", handler!=\"or\"} unless on(job) up"
            ),
            [
                q("orderflow_orders_total{reason=\"x and y\", handler!=\"or\"}"),
                q("up")
            ]
        );
        assert_eq!(
            queries("sum by (reason) (x) > 1"),
            [q("sum by (reason) (x)")]
        );
    }

    #[test]
    fn a_comparison_of_two_expressions_checks_both_sides() {
        assert_eq!(queries("a > b"), [q("a"), q("b")]);
    }
}
