//! Whitespace in patterns, as the server counts it.
//!
//! The server trims input and looks for whitespace with Rust's `char::is_whitespace`
//! (Unicode `White_Space`), and the patterns are written with that in mind (`\S`: not
//! only spaces). A JSON Schema pattern is an ECMA-262 regular expression, whose `\s` is
//! another set: it has U+FEFF and lacks U+0085. So every `\s` and `\S` of the document's
//! patterns is spelled out as a class of exactly the characters Rust counts.

use serde_json::Value;

/// The characters `char::is_whitespace` counts, as the inside of a character class
/// (`\u0009-\u000D\u0020…`), from the function itself.
fn class_body() -> String {
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for code in (0..=u32::from(char::MAX))
        .filter(|code| char::from_u32(*code).is_some_and(char::is_whitespace))
    {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == code => *end = code,
            _ => ranges.push((code, code)),
        }
    }
    ranges
        .into_iter()
        .map(|(start, end)| {
            if start == end {
                format!("\\u{start:04X}")
            } else {
                format!("\\u{start:04X}-\\u{end:04X}")
            }
        })
        .collect()
}

/// `pattern` with each `\s` and `\S` spelled out with `body` (see [`class_body`]). A `\S`
/// inside a class cannot be spelled out and is left as it is (no pattern has one).
fn spelled_out(pattern: &str, body: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('s') if in_class => out.push_str(body),
                Some('s') => out.push_str(&format!("[{body}]")),
                Some('S') if !in_class => out.push_str(&format!("[^{body}]")),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Spells out `\s` and `\S` in every `pattern` of `document`.
pub(super) fn spell_out(document: &mut Value) {
    let body = class_body();
    let mut pending = vec![document];
    while let Some(node) = pending.pop() {
        match node {
            Value::Object(object) => {
                for (key, value) in object.iter_mut() {
                    match value {
                        Value::String(pattern) if key == "pattern" => {
                            *pattern = spelled_out(pattern, &body);
                        }
                        _ => pending.push(value),
                    }
                }
            }
            Value::Array(values) => pending.extend(values.iter_mut()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use regex::Regex;
    use serde_json::Value;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Characters around the edges of the two sets, and some that are in neither.
    const PROBES: [char; 12] = [
        ' ', '\t', '\u{0B}', '\u{1C}', '\u{85}', '\u{A0}', '\u{200B}', '\u{2028}', '\u{3000}',
        '\u{FEFF}', 'a', '\u{0}',
    ];

    fn pattern(document: &Value, pointer: &str) -> Result<Regex, Box<dyn std::error::Error>> {
        let pattern = document
            .pointer(pointer)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no pattern at {pointer}"))?;
        assert!(
            !pattern.contains("\\s") && !pattern.contains("\\S"),
            "{pattern}"
        );
        Ok(Regex::new(pattern)?)
    }

    #[test]
    fn patterns_count_as_whitespace_what_the_server_trims() -> TestResult {
        let document = crate::openapi::document()?;
        let schemas = "/components/schemas";
        let name = pattern(
            &document,
            &format!("{schemas}/CreateWorkflowRequest/properties/name/pattern"),
        )?;
        let email = pattern(
            &document,
            &format!("{schemas}/CreateAlertRequest/then/properties/target/pattern"),
        )?;
        let url = pattern(
            &document,
            &format!("{schemas}/CreateAlertRequest/else/properties/target/pattern"),
        )?;
        for probe in PROBES {
            let blank = probe.is_whitespace();
            let shown = probe.escape_unicode();
            // A name of that character alone is only spaces, or it is not.
            assert_eq!(name.is_match(&probe.to_string()), !blank, "name {shown}");
            // Whitespace inside an address or a URL is refused; around them it is
            // trimmed (and anything else is part of the address).
            let inside = format!("ada{probe}@example.com");
            assert_eq!(email.is_match(&inside), !blank, "e-mail {shown}");
            let around = format!("{probe}ada@example.com{probe}");
            assert!(email.is_match(&around), "e-mail around {shown}");
            let inside = format!("https://example.com/a{probe}b");
            assert_eq!(url.is_match(&inside), !blank, "URL {shown}");
        }
        Ok(())
    }

    #[test]
    fn only_the_whitespace_escapes_change() {
        let body = super::class_body();
        assert!(body.starts_with("\\u0009-\\u000D\\u0020\\u0085"), "{body}");
        assert_eq!(
            super::spelled_out(r"^\s*[^@\s]+\.\\s\S$", "W"),
            r"^[W]*[^@W]+\.\\s[^W]$"
        );
    }
}
