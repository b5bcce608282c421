//! The `code.javascript` node: a function body run in an embedded JavaScript engine,
//! behind the [`CodeRunner`] port so this crate links no interpreter (the runtime lives
//! in the `jsruntime` adapter crate and `app` wires it).
//!
//! The body sees `trigger`, `nodes`, `env` and `execution` (the run's data, secret
//! variables in clear) and returns a JSON value, which is the step's output. It runs
//! with no filesystem, network, timers or module loading, under a memory and a time
//! limit that the node may set within the instance's maxima. Its `console` lines go
//! to the step record (bounded); secret values are redacted from them like from every
//! other recorded value.
//!
//! The code is compiled when the workflow is saved: a syntax error is a validation
//! error naming the node, the line and the column.

use std::time::Duration;

use async_trait::async_trait;
use fluxolab_kernel::{StorageError, ValidationErrors, WorkspaceId};
use serde_json::Value;

use crate::definition::Definition;

/// The node type's code.
pub const CODE_NODE_TYPE: &str = "code.javascript";
/// The longest `code` param, in bytes.
pub const MAX_CODE_BYTES: usize = 64 * 1024;
/// A code step's memory limit when its node sets none, in MiB.
pub const DEFAULT_MEMORY_MB: u64 = 32;
/// A code step's time limit when its node sets none, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
/// The highest memory maximum an instance may configure, in MiB.
pub const CEILING_MEMORY_MB: u64 = 1_024;
/// The highest time maximum an instance may configure, in milliseconds.
pub const CEILING_TIMEOUT_MS: u64 = 60_000;
/// The largest output a code step may return, in bytes of JSON (as `http.request`'s
/// response cap).
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// The most `console` lines a step records.
pub const MAX_LOG_LINES: usize = 100;
/// The most `console` bytes a step records.
pub const MAX_LOG_BYTES: usize = 16 * 1024;

/// The limits one code step runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeLimits {
    /// The most memory the script's heap may use, in MiB.
    pub memory_mb: u64,
    /// How long the script may run.
    pub timeout: Duration,
}

impl CodeLimits {
    /// The defaults, 32 MiB and 2 s.
    pub const DEFAULT: CodeLimits = CodeLimits {
        memory_mb: DEFAULT_MEMORY_MB,
        timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
    };

    /// The limits a node with `params` runs under: its `memory_limit_mb` and
    /// `timeout_ms`, or the defaults, each at most `maxima`'s.
    pub fn for_params(params: &Value, maxima: CodeLimits) -> CodeLimits {
        let memory_mb = params["memory_limit_mb"]
            .as_u64()
            .unwrap_or(DEFAULT_MEMORY_MB)
            .clamp(1, maxima.memory_mb.max(1));
        let timeout_ms = params["timeout_ms"]
            .as_u64()
            .unwrap_or(DEFAULT_TIMEOUT_MS)
            .max(1);
        CodeLimits {
            memory_mb,
            timeout: Duration::from_millis(timeout_ms).min(maxima.timeout),
        }
    }
}

/// Where a syntax error is, in the node's code (1-based), and what it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} at line {line}, column {column}")]
pub struct CodeSyntaxError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// Why code could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// The code is not valid JavaScript.
    #[error(transparent)]
    Syntax(#[from] CodeSyntaxError),
    /// The code could not be compiled within the limits (it is too large for them).
    #[error("{0}")]
    Limit(String),
}

/// What a finished script gave.
#[derive(Clone, Debug, PartialEq)]
pub struct CodeOutput {
    /// The returned value as JSON (`undefined` is `null`).
    pub value: Value,
    /// What it wrote to `console`, bounded by [`MAX_LOG_LINES`] and [`MAX_LOG_BYTES`].
    pub logs: Vec<String>,
}

/// Why a script failed; its `console` lines up to then are kept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CodeFailure {
    pub kind: CodeFailureKind,
    /// What went wrong, for the step's error (the thrown error's name, message and line).
    pub message: String,
    pub logs: Vec<String>,
}

/// The kinds of [`CodeFailure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeFailureKind {
    /// The code threw (or returned a rejected promise).
    Thrown,
    /// The code ran past its time limit.
    TimeLimit,
    /// The code needed more memory than its limit.
    MemoryLimit,
    /// The returned value is not JSON (a `BigInt`, a cycle…).
    Output,
    /// The runtime could not run it (it could not start).
    Runtime,
}

/// Runs `code.javascript` nodes: an embedded engine without I/O (an adapter).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CodeRunner: Send + Sync {
    /// The most a node may set: its `memory_limit_mb` and `timeout_ms` may not exceed
    /// these (the instance's configuration).
    fn maxima(&self) -> CodeLimits;
    /// Compiles `code` (a function body) without running it.
    async fn compile(&self, code: &str) -> Result<(), CompileError>;
    /// Runs `code` (a function body) with `data` (`trigger`, `nodes`, `env`,
    /// `execution`) as its arguments, under `limits`, off the async threads.
    async fn run(
        &self,
        code: &str,
        data: &Value,
        limits: CodeLimits,
    ) -> Result<CodeOutput, CodeFailure>;
}

/// The code limits each workspace allows its nodes to set (`execution_defaults.
/// code_max_memory_mb` and `code_max_timeout_ms`), within the instance's.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WorkspaceCodeMaxima: Send + Sync {
    async fn code_maxima(&self, workspace: WorkspaceId) -> Result<CodeLimits, StorageError>;
}

/// A runner for processes that run no code: compiling and running both fail (so
/// code nodes are refused, never silently skipped).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCodeRunner;

const NO_RUNTIME: &str = "this FluxoLab process has no JavaScript runtime";

#[async_trait]
impl CodeRunner for NoCodeRunner {
    fn maxima(&self) -> CodeLimits {
        CodeLimits::DEFAULT
    }

    async fn compile(&self, _code: &str) -> Result<(), CompileError> {
        Err(CompileError::Limit(NO_RUNTIME.to_owned()))
    }

    async fn run(
        &self,
        _code: &str,
        _data: &Value,
        _limits: CodeLimits,
    ) -> Result<CodeOutput, CodeFailure> {
        Err(CodeFailure {
            kind: CodeFailureKind::Runtime,
            message: NO_RUNTIME.to_owned(),
            logs: Vec::new(),
        })
    }
}

/// Checks what the registry cannot of the code nodes of `definition`: their limits
/// against the workspace's maxima (`workspace`) and the runner's (the instance's), and
/// that their code compiles. Problems are added to `errors`, each naming the node and
/// field (and a syntax error's line and column).
pub async fn check_code_nodes(
    definition: &Definition,
    runner: &dyn CodeRunner,
    workspace: CodeLimits,
    errors: &mut ValidationErrors,
) {
    let instance = runner.maxima();
    let millis = |limits: CodeLimits| u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX);
    for (index, node) in definition.nodes.iter().enumerate() {
        if node.node_type != CODE_NODE_TYPE {
            continue;
        }
        let at = format!("definition.nodes[{index}].params");
        let limits = [
            (
                "memory_limit_mb",
                instance.memory_mb,
                workspace.memory_mb,
                "code_max_memory_mb",
                "MiB",
            ),
            (
                "timeout_ms",
                millis(instance),
                millis(workspace),
                "code_max_timeout_ms",
                "ms",
            ),
        ];
        for (param, instance_max, workspace_max, setting, unit) in limits {
            let (max, whose) = if workspace_max < instance_max {
                (
                    workspace_max,
                    format!("this workspace's `execution_defaults.{setting}`"),
                )
            } else {
                (instance_max, "this instance's maximum".to_owned())
            };
            if let Some(value) = node.params[param].as_u64()
                && value > max
            {
                errors.add(
                    format!("{at}.{param}"),
                    format!(
                        "node `{}`: must be at most {max} ({whose}, in {unit})",
                        node.id
                    ),
                );
            }
        }
        // The registry reports code that is missing, blank or too long.
        let Some(code) = node.params["code"]
            .as_str()
            .filter(|code| !code.trim().is_empty() && code.len() <= MAX_CODE_BYTES)
        else {
            continue;
        };
        match runner.compile(code).await {
            Ok(()) => {}
            Err(CompileError::Syntax(error)) => errors.add(
                format!("{at}.code"),
                format!(
                    "node `{}`: {} at line {}, column {}",
                    node.id, error.message, error.line, error.column
                ),
            ),
            Err(CompileError::Limit(message)) => {
                errors.add(
                    format!("{at}.code"),
                    format!("node `{}`: {message}", node.id),
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "code_tests.rs"]
mod tests;
