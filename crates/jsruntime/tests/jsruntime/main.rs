//! The JavaScript runtime through the `CodeRunner` port, as the engine uses it.

mod limits;
mod scripts;

use std::time::Duration;

use fluxolab_jsruntime::{JsRunner, JsSettings};
use fluxolab_workflows::code::{CodeFailure, CodeLimits, CodeOutput, CodeRunner};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A runner with the defaults as maxima (32 MiB, 2 s).
fn runner() -> JsRunner {
    JsRunner::new(JsSettings {
        maxima: CodeLimits::DEFAULT,
        concurrency: 2,
    })
}

/// The run's data as the engine passes it.
fn data() -> Value {
    json!({
        "trigger": {"body": {"a": 4, "b": 8, "name": "Ada"}, "headers": {}, "query": {}},
        "nodes": {"shape": {"output": {"total": 12}}},
        "execution": {"id": "0190c7a2-0000-7000-8000-000000000000"},
        "env": {"REGION": "eu", "TOKEN": "s3cr3t"},
    })
}

/// Runs `code` with [`data`] under `limits`.
async fn run_with(code: &str, limits: CodeLimits) -> Result<CodeOutput, CodeFailure> {
    runner().run(code, &data(), limits).await
}

/// Runs `code` with [`data`] under the default limits.
async fn run(code: &str) -> Result<CodeOutput, CodeFailure> {
    run_with(code, CodeLimits::DEFAULT).await
}

/// Limits of `memory_mb` and `timeout_ms`.
fn limits(memory_mb: u64, timeout_ms: u64) -> CodeLimits {
    CodeLimits {
        memory_mb,
        timeout: Duration::from_millis(timeout_ms),
    }
}
