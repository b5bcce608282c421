//! Masked hints: what the API shows instead of a secret.

/// The hint for a secret: four bullets and, when the secret is long enough for it not to
/// give much away (at least 12 characters), its last four characters.
pub fn mask_hint(secret: &str) -> String {
    const BULLETS: &str = "••••";
    let count = secret.chars().count();
    if count < 12 {
        return BULLETS.to_owned();
    }
    let tail: String = secret.chars().skip(count - 4).collect();
    format!("{BULLETS}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_secrets_show_their_last_four_characters() {
        assert_eq!(mask_hint("sk_live_0123456789ab1a2b"), "••••1a2b");
    }

    #[test]
    fn short_secrets_show_nothing() {
        assert_eq!(mask_hint("hunter2"), "••••");
        assert_eq!(mask_hint(""), "••••");
    }
}
