//! How a [`SettingsPatch`] is checked and applied: every field validated, all problems
//! reported at once, and the keys that really changed listed for the activity log.

use fluxolab_kernel::{
    ValidationErrors, plain_http_url as valid_url, plausible_email as valid_email,
};

use crate::settings::{
    BrandingPatch, ExecutionDefaultsPatch, MAX_ATTEMPTS, MAX_DISPLAY_NAME_CHARS,
    MAX_NOTIFICATION_EMAILS, NotificationsPatch, SettingsPatch, TIMEOUT_SECONDS, WorkspaceSettings,
};

/// The IANA time zone names FluxoLab knows, sorted (its bundled database, or the
/// system's): exactly what [`valid_timezone`] accepts, spelled as listed.
pub fn timezone_names() -> &'static [String] {
    static NAMES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|name| name.as_str().to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    });
    &NAMES
}

/// Whether `value` is a time zone name in the IANA database (`Europe/Lisbon`, `UTC`),
/// spelled as the database spells it.
pub fn valid_timezone(value: &str) -> bool {
    timezone_names()
        .binary_search_by(|name| name.as_str().cmp(value))
        .is_ok()
}

/// Whether `value` is a well-formed BCP 47 language tag of the usual shape:
/// language, then optional script, region and variants (`en`, `pt-BR`, `zh-Hant-TW`).
pub fn valid_locale(value: &str) -> bool {
    let mut parts = value.split('-');
    let Some(language) = parts.next() else {
        return false;
    };
    if !(2..=3).contains(&language.len()) || !language.chars().all(|c| c.is_ascii_alphabetic()) {
        return false;
    }
    // Subtags must come in order: script (4 letters), region (2 letters or 3 digits),
    // then variants (5–8 alphanumerics, or 4 starting with a digit).
    let mut stage = 0;
    for part in parts {
        let letters = part.chars().all(|c| c.is_ascii_alphabetic());
        let digits = part.chars().all(|c| c.is_ascii_digit());
        let alphanumeric = part.chars().all(|c| c.is_ascii_alphanumeric());
        let next = if stage < 1 && part.len() == 4 && letters {
            1
        } else if stage < 2 && ((part.len() == 2 && letters) || (part.len() == 3 && digits)) {
            2
        } else if alphanumeric
            && ((5..=8).contains(&part.len())
                || (part.len() == 4 && part.starts_with(|c: char| c.is_ascii_digit())))
        {
            3
        } else {
            return false;
        };
        stage = next;
    }
    true
}

/// Whether `value` is a colour as `#rrggbb`.
pub fn valid_hex_color(value: &str) -> bool {
    value.len() == 7 && value.starts_with('#') && value[1..].chars().all(|c| c.is_ascii_hexdigit())
}

/// Settings being changed: the result so far, the problems found and the keys changed.
pub(crate) struct Checked {
    settings: WorkspaceSettings,
    errors: ValidationErrors,
    changed: Vec<&'static str>,
}

impl Checked {
    pub(crate) fn new(settings: WorkspaceSettings) -> Self {
        Self {
            settings,
            errors: ValidationErrors::new(),
            changed: Vec::new(),
        }
    }

    /// The settings and the keys that changed, or every problem found.
    pub(crate) fn finish(self) -> Result<(WorkspaceSettings, Vec<&'static str>), ValidationErrors> {
        self.errors
            .into_result(())
            .map(|()| (self.settings, self.changed))
    }

    /// Sets `target` to `value` when `valid`, noting the key when it changed.
    fn set<T: PartialEq>(
        errors: &mut ValidationErrors,
        changed: &mut Vec<&'static str>,
        key: &'static str,
        target: &mut T,
        value: T,
        problem: Option<&str>,
    ) {
        if let Some(message) = problem {
            errors.add(key, message);
            return;
        }
        if *target != value {
            *target = value;
            changed.push(key);
        }
    }

    pub(crate) fn apply(&mut self, patch: SettingsPatch) {
        let Self {
            settings,
            errors,
            changed,
        } = self;
        if let Some(timezone) = patch.timezone {
            let problem = (!valid_timezone(&timezone))
                .then_some("must be an IANA time zone name, such as `Europe/Lisbon` or `UTC`");
            Self::set(
                errors,
                changed,
                "timezone",
                &mut settings.timezone,
                timezone,
                problem,
            );
        }
        if let Some(locale) = patch.locale {
            let problem = (!valid_locale(&locale))
                .then_some("must be a BCP 47 language tag, such as `en` or `pt-BR`");
            Self::set(
                errors,
                changed,
                "locale",
                &mut settings.locale,
                locale,
                problem,
            );
        }
        if let Some(allow) = patch.allow_internal_network {
            let target = &mut settings.allow_internal_network;
            Self::set(
                errors,
                changed,
                "allow_internal_network",
                target,
                allow,
                None,
            );
        }
        if let Some(defaults) = patch.execution_defaults {
            self.apply_execution_defaults(&defaults);
        }
        if let Some(notifications) = patch.notifications {
            self.apply_notifications(notifications);
        }
        if let Some(branding) = patch.branding {
            self.apply_branding(branding);
        }
    }

    fn apply_execution_defaults(&mut self, patch: &ExecutionDefaultsPatch) {
        let Self {
            settings,
            errors,
            changed,
        } = self;
        let defaults = &mut settings.document.execution_defaults;
        if let Some(timeout) = patch.timeout_seconds {
            let problem = (!TIMEOUT_SECONDS.contains(&timeout))
                .then_some("must be between 1 and 86400 seconds");
            let key = "execution_defaults.timeout_seconds";
            Self::set(
                errors,
                changed,
                key,
                &mut defaults.timeout_seconds,
                timeout,
                problem,
            );
        }
        if let Some(attempts) = patch.max_attempts {
            let problem = (!MAX_ATTEMPTS.contains(&attempts)).then_some("must be between 1 and 10");
            let key = "execution_defaults.max_attempts";
            Self::set(
                errors,
                changed,
                key,
                &mut defaults.max_attempts,
                attempts,
                problem,
            );
        }
        if let Some(save) = patch.save_successful_steps {
            let key = "execution_defaults.save_successful_steps";
            Self::set(
                errors,
                changed,
                key,
                &mut defaults.save_successful_steps,
                save,
                None,
            );
        }
    }

    fn apply_notifications(&mut self, patch: NotificationsPatch) {
        let Self {
            settings,
            errors,
            changed,
        } = self;
        let notifications = &mut settings.document.notifications;
        if let Some(failed) = patch.execution_failed {
            let target = &mut notifications.execution_failed;
            if let Some(emails) = failed.emails {
                let key = "notifications.execution_failed.emails";
                let problem = if emails.len() > MAX_NOTIFICATION_EMAILS {
                    Some("at most 20 addresses")
                } else if emails.iter().any(|email| !valid_email(email)) {
                    Some("every entry must be an email address")
                } else {
                    None
                };
                Self::set(errors, changed, key, &mut target.emails, emails, problem);
            }
            if let Some(url) = failed.webhook_url {
                let key = "notifications.execution_failed.webhook_url";
                let problem = url
                    .as_deref()
                    .is_some_and(|url| !valid_url(url, true))
                    .then_some("must be an absolute http(s) URL");
                Self::set(errors, changed, key, &mut target.webhook_url, url, problem);
            }
        }
        if let Some(weekly) = patch.weekly_usage_report {
            let key = "notifications.weekly_usage_report";
            Self::set(
                errors,
                changed,
                key,
                &mut notifications.weekly_usage_report,
                weekly,
                None,
            );
        }
    }

    fn apply_branding(&mut self, patch: BrandingPatch) {
        let Self {
            settings,
            errors,
            changed,
        } = self;
        let branding = &mut settings.document.branding;
        if let Some(name) = patch.display_name {
            let problem = name
                .as_deref()
                .is_some_and(|name| {
                    name.trim().is_empty() || name.chars().count() > MAX_DISPLAY_NAME_CHARS
                })
                .then_some("must be 1 to 80 characters, not only spaces");
            let key = "branding.display_name";
            Self::set(
                errors,
                changed,
                key,
                &mut branding.display_name,
                name,
                problem,
            );
        }
        if let Some(url) = patch.logo_url {
            let problem = url
                .as_deref()
                .is_some_and(|url| !valid_url(url, false))
                .then_some("must be an absolute https:// URL");
            Self::set(
                errors,
                changed,
                "branding.logo_url",
                &mut branding.logo_url,
                url,
                problem,
            );
        }
        if let Some(color) = patch.primary_color {
            let problem = color
                .as_deref()
                .is_some_and(|color| !valid_hex_color(color))
                .then_some("must be a colour as `#rrggbb`");
            let key = "branding.primary_color";
            Self::set(
                errors,
                changed,
                key,
                &mut branding.primary_color,
                color,
                problem,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::settings::{FailureNotificationsPatch, SettingsDocument};

    fn defaults() -> WorkspaceSettings {
        WorkspaceSettings {
            timezone: "UTC".to_owned(),
            locale: "en".to_owned(),
            allow_internal_network: false,
            document: SettingsDocument::default(),
            failure_webhook_secret: None,
            failure_webhook_previous_secret: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.errors().iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn time_zones_are_checked_against_the_iana_database() {
        for good in ["UTC", "Europe/Lisbon", "America/Sao_Paulo", "Asia/Kolkata"] {
            assert!(valid_timezone(good), "{good}");
        }
        for bad in ["", "Mars/Base", "Europe/Nowhere", "utc/", "europe/lisbon"] {
            assert!(!valid_timezone(bad), "{bad}");
        }
    }

    #[test]
    fn locales_are_bcp47_tags() {
        for good in [
            "en",
            "pt-BR",
            "zh-Hant-TW",
            "es-419",
            "de-CH-1996",
            "sl-rozaj",
        ] {
            assert!(valid_locale(good), "{good}");
        }
        for bad in [
            "",
            "e",
            "english",
            "pt_BR",
            "en-",
            "pt-BR-Latn",
            "-en",
            "en--US",
        ] {
            assert!(!valid_locale(bad), "{bad}");
        }
    }

    #[test]
    fn emails_urls_and_colours() {
        assert!(valid_email("ops@example.com"));
        for bad in [
            "",
            "ops",
            "@example.com",
            "ops@",
            "ops@example",
            "o ps@example.com",
            "a@b@c.d",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
        assert!(valid_url("https://cdn.example.com/logo.png", false));
        assert!(!valid_url("http://cdn.example.com/logo.png", false));
        assert!(valid_url("http://hooks.example.com/x", true));
        for bad in [
            "ftp://example.com",
            "not a url",
            "https://",
            "http://[",
            "https://u@h/",
        ] {
            assert!(!valid_url(bad, true), "{bad}");
        }
        assert!(valid_hex_color("#12abEF"));
        for bad in ["12abef", "#12abe", "#12abeg", "#12abefa"] {
            assert!(!valid_hex_color(bad), "{bad}");
        }
    }

    #[test]
    fn every_invalid_field_is_named_and_nothing_is_applied() {
        let mut checked = Checked::new(defaults());
        checked.apply(SettingsPatch {
            timezone: Some("Mars/Base".to_owned()),
            locale: Some("pt-BR".to_owned()),
            execution_defaults: Some(ExecutionDefaultsPatch {
                timeout_seconds: Some(0),
                max_attempts: Some(11),
                save_successful_steps: None,
            }),
            notifications: Some(NotificationsPatch {
                execution_failed: Some(FailureNotificationsPatch {
                    emails: Some(vec!["nope".to_owned()]),
                    webhook_url: Some(Some("ftp://x".to_owned())),
                }),
                weekly_usage_report: None,
            }),
            branding: Some(BrandingPatch {
                display_name: Some(Some(" ".to_owned())),
                logo_url: Some(Some("http://cdn.example.com/l.png".to_owned())),
                primary_color: Some(Some("red".to_owned())),
            }),
            ..SettingsPatch::default()
        });
        let errors = checked.finish().expect_err("invalid");
        assert_eq!(
            fields(&errors),
            [
                "timezone",
                "execution_defaults.timeout_seconds",
                "execution_defaults.max_attempts",
                "notifications.execution_failed.emails",
                "notifications.execution_failed.webhook_url",
                "branding.display_name",
                "branding.logo_url",
                "branding.primary_color",
            ]
        );
    }

    #[test]
    fn only_keys_that_really_change_are_listed_and_null_clears() {
        let mut start = defaults();
        start.document.branding.primary_color = Some("#000000".to_owned());
        let mut checked = Checked::new(start);
        checked.apply(SettingsPatch {
            timezone: Some("UTC".to_owned()),
            locale: Some("pt-BR".to_owned()),
            branding: Some(BrandingPatch {
                primary_color: Some(None),
                ..BrandingPatch::default()
            }),
            execution_defaults: Some(ExecutionDefaultsPatch {
                max_attempts: Some(5),
                ..ExecutionDefaultsPatch::default()
            }),
            ..SettingsPatch::default()
        });
        let (settings, changed) = checked.finish().expect("valid");
        assert_eq!(
            changed,
            [
                "locale",
                "execution_defaults.max_attempts",
                "branding.primary_color"
            ]
        );
        assert_eq!(settings.locale, "pt-BR");
        assert_eq!(settings.document.execution_defaults.max_attempts, 5);
        assert_eq!(settings.document.execution_defaults.timeout_seconds, 300);
        assert_eq!(settings.document.branding.primary_color, None);
    }
}
