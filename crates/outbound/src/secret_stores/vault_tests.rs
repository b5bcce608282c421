//! Unit tests of `vault.rs`.

use super::*;

fn fields(json: &str) -> Map<String, Value> {
    serde_json::from_str(json).unwrap_or_default()
}

#[test]
fn a_single_field_is_the_value_and_several_need_a_key() {
    let single = entry("db", fields(r#"{"password":"p@ss"}"#));
    assert_eq!(single.whole().expose_secret(), "p@ss");
    let by_key = entry("db", fields(r#"{"password":"p@ss"}"#)).pick(Some("password"));
    assert_eq!(
        by_key.map(|v| v.expose_secret().to_owned()),
        Ok("p@ss".to_owned())
    );
    let several = r#"{"user":"app","password":"p@ss","port":5432}"#;
    let whole = entry("db", fields(several)).whole();
    assert_eq!(
        serde_json::from_str::<Value>(whole.expose_secret()).ok(),
        serde_json::from_str::<Value>(several).ok()
    );
    let port = entry("db", fields(several)).pick(Some("port"));
    assert_eq!(
        port.map(|v| v.expose_secret().to_owned()),
        Ok("5432".to_owned())
    );
    let ambiguous = entry("db", fields(several))
        .pick(None)
        .expect_err("needs a key");
    let shown = ambiguous.to_string();
    assert!(
        shown.contains("password") && !shown.contains("p@ss"),
        "{shown}"
    );
}

#[test]
fn paths_with_dot_segments_are_refused() {
    assert!(segments("secret path", "../sys/seal").is_err());
    assert!(segments("secret path", "a//b").is_err());
    assert!(segments("secret path", "").is_err());
    assert_eq!(
        segments("mount", "/kv/team/").ok(),
        Some(vec!["kv", "team"])
    );
}
