//! The reference Standard Webhooks implementation (`standardwebhooks` from PyPI, run by
//! `crates/app/tests/standard_webhooks.py`): signs what the intake verifies and verifies
//! what FluxoLab sends, so neither side is checked against our own code.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::Error;

/// The library's Python: `STANDARD_WEBHOOKS_PYTHON`, else the virtualenv `cargo xtask
/// standard-webhooks` makes under `.fluxolab/standard-webhooks`.
#[derive(Debug, Clone)]
pub struct ReferenceWebhooks {
    python: PathBuf,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

impl ReferenceWebhooks {
    /// The installed library; `None` (the test skips) when it is missing outside CI.
    /// Under CI a missing library fails the test.
    pub fn find() -> Result<Option<Self>, Error> {
        let python = std::env::var_os("STANDARD_WEBHOOKS_PYTHON")
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../.fluxolab/standard-webhooks/bin/python")
            });
        if python.exists() {
            return Ok(Some(Self { python }));
        }
        let why = "the Standard Webhooks library is not installed: run `cargo xtask standard-webhooks` or set STANDARD_WEBHOOKS_PYTHON";
        if in_ci() {
            return Err(why.into());
        }
        eprintln!("skipped: {why}");
        Ok(None)
    }

    /// Runs the script with `args`, `input` on stdin: its exit status and stdout.
    async fn run(&self, args: &[&str], input: &[u8]) -> Result<(bool, String), Error> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/standard_webhooks.py");
        let mut child = tokio::process::Command::new(&self.python)
            .arg(&script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        stdin.write_all(input).await?;
        drop(stdin);
        let output = child.wait_with_output().await?;
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !output.stderr.is_empty() {
            return Err(format!(
                "standard_webhooks.py {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok((output.status.success(), stdout))
    }

    /// The `webhook-signature` the library makes for `body` as message `id` at `timestamp`.
    pub async fn sign(
        &self,
        secret: &str,
        id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Result<String, Error> {
        let (signed, signature) = self
            .run(&["sign", secret, id, &timestamp.to_string()], body)
            .await?;
        if !signed {
            return Err(format!("the library did not sign: {signature}").into());
        }
        Ok(signature)
    }

    /// Whether the library accepts `body` with `headers` (name → value) under `secret`;
    /// its reason when not.
    pub async fn verify(&self, secret: &str, headers: &Value, body: &str) -> Result<(), Error> {
        let message = json!({"headers": headers, "body": body}).to_string();
        let (valid, answer) = self.run(&["verify", secret], message.as_bytes()).await?;
        if valid && answer == "ok" {
            Ok(())
        } else {
            Err(format!("the reference library refused the message: {answer}").into())
        }
    }
}
