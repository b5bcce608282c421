#![doc = include_str!("../README.md")]

mod console;
mod sandbox;

use std::sync::Arc;

use async_trait::async_trait;
use fluxolab_workflows::code::{
    CodeFailure, CodeFailureKind, CodeLimits, CodeOutput, CodeRunner, CompileError,
};
use serde_json::Value;
use tokio::sync::Semaphore;

/// How the runtime is bounded on this instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsSettings {
    /// The most a node may set (`CODE_MAX_MEMORY_MB`, `CODE_MAX_TIMEOUT_MS`).
    pub maxima: CodeLimits,
    /// How many scripts run at once in this process (`CODE_CONCURRENCY`); more wait.
    pub concurrency: usize,
}

/// The [`CodeRunner`] on embedded QuickJS: each script in a fresh runtime on a
/// blocking thread, so a busy script never holds an async worker.
#[derive(Clone, Debug)]
pub struct JsRunner {
    maxima: CodeLimits,
    permits: Arc<Semaphore>,
}

impl JsRunner {
    /// A runner bounded by `settings`.
    pub fn new(settings: JsSettings) -> Self {
        Self {
            maxima: settings.maxima,
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        }
    }

    /// Runs `work` on a blocking thread once a permit is free.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| "the JavaScript runtime is shutting down".to_owned())?;
        tokio::task::spawn_blocking(work).await.map_err(|error| {
            tracing::error!(%error, "a script's thread failed");
            "the JavaScript runtime failed".to_owned()
        })
    }
}

#[async_trait]
impl CodeRunner for JsRunner {
    fn maxima(&self) -> CodeLimits {
        self.maxima
    }

    async fn compile(&self, code: &str) -> Result<(), CompileError> {
        let code = code.to_owned();
        // Compiling runs no body; a save request waits at most the default time limit.
        let limits = CodeLimits {
            memory_mb: self.maxima.memory_mb,
            timeout: self.maxima.timeout.min(CodeLimits::DEFAULT.timeout),
        };
        self.blocking(move || sandbox::compile(&code, limits))
            .await
            .map_err(CompileError::Limit)?
    }

    async fn run(
        &self,
        code: &str,
        data: &Value,
        limits: CodeLimits,
    ) -> Result<CodeOutput, CodeFailure> {
        let runtime_failure = |message: String| CodeFailure {
            kind: CodeFailureKind::Runtime,
            message,
            logs: Vec::new(),
        };
        let data =
            serde_json::to_string(data).map_err(|error| runtime_failure(error.to_string()))?;
        let code = code.to_owned();
        let limits = CodeLimits {
            memory_mb: limits.memory_mb.min(self.maxima.memory_mb),
            timeout: limits.timeout.min(self.maxima.timeout),
        };
        self.blocking(move || sandbox::run(&code, &data, limits))
            .await
            .map_err(runtime_failure)?
    }
}
