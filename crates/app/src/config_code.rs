//! `CODE_*`: the bounds of `code.javascript` steps on this instance.

use std::time::Duration;

use fluxolab_jsruntime::JsSettings;
use fluxolab_workflows::code::{CEILING_MEMORY_MB, CEILING_TIMEOUT_MS, CodeLimits};

use super::Reader;

/// `CODE_MAX_MEMORY_MB` when unset: what a node may raise its memory limit to.
pub const DEFAULT_MAX_MEMORY_MB: u64 = 128;
/// `CODE_MAX_TIMEOUT_MS` when unset: what a node may raise its time limit to.
pub const DEFAULT_MAX_TIMEOUT_MS: u64 = 10_000;

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    /// `CODE_MAX_MEMORY_MB`, `CODE_MAX_TIMEOUT_MS` and `CODE_CONCURRENCY` (default: the
    /// CPU count, since a script computes).
    pub(super) fn code(&mut self) -> JsSettings {
        let memory_mb = self.number(
            "CODE_MAX_MEMORY_MB",
            DEFAULT_MAX_MEMORY_MB,
            1..=CEILING_MEMORY_MB,
        );
        let timeout_ms = self.number(
            "CODE_MAX_TIMEOUT_MS",
            DEFAULT_MAX_TIMEOUT_MS,
            1..=CEILING_TIMEOUT_MS,
        );
        let cores = std::thread::available_parallelism().map_or(2, usize::from) as u64;
        let concurrency = self.number("CODE_CONCURRENCY", cores, 1..=256);
        JsSettings {
            maxima: CodeLimits {
                memory_mb,
                timeout: Duration::from_millis(timeout_ms),
            },
            concurrency: usize::try_from(concurrency).unwrap_or(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{SECRET, lookup};
    use super::*;
    use crate::config::{ConfigErrors, Settings};

    const BASE: [(&str, &str); 2] = [
        ("DATABASE_URL", "postgres://postgres@127.0.0.1/fluxolab"),
        ("APP_SECRET", SECRET),
    ];

    #[test]
    fn code_maxima_have_defaults_and_are_checked() -> Result<(), ConfigErrors> {
        let settings = Settings::from_lookup(lookup(&BASE))?;
        assert_eq!(settings.code.maxima.memory_mb, DEFAULT_MAX_MEMORY_MB);
        assert_eq!(
            settings.code.maxima.timeout,
            Duration::from_millis(DEFAULT_MAX_TIMEOUT_MS)
        );
        assert!(settings.code.concurrency >= 1);

        let mut set = BASE.to_vec();
        set.extend([
            ("CODE_MAX_MEMORY_MB", "64"),
            ("CODE_MAX_TIMEOUT_MS", "500"),
            ("CODE_CONCURRENCY", "3"),
        ]);
        let settings = Settings::from_lookup(lookup(&set))?;
        assert_eq!(settings.code.maxima.memory_mb, 64);
        assert_eq!(settings.code.maxima.timeout, Duration::from_millis(500));
        assert_eq!(settings.code.concurrency, 3);

        let mut bad = BASE.to_vec();
        bad.extend([
            ("CODE_MAX_MEMORY_MB", "4096"),
            ("CODE_MAX_TIMEOUT_MS", "0"),
            ("CODE_CONCURRENCY", "many"),
        ]);
        let errors = Settings::from_lookup(lookup(&bad))
            .err()
            .unwrap_or(ConfigErrors(vec![]));
        let named: Vec<&str> = errors.0.iter().map(|problem| problem.variable).collect();
        assert_eq!(
            named,
            vec![
                "CODE_MAX_MEMORY_MB",
                "CODE_MAX_TIMEOUT_MS",
                "CODE_CONCURRENCY"
            ]
        );
        assert_eq!(errors.0[0].message, "must be between 1 and 1024, not 4096");
        Ok(())
    }
}
