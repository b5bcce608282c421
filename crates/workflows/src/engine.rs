//! The engine: runs a definition from its trigger, node by node, recording a step for
//! each. Pure nodes run here; nodes with side effects (HTTP, e-mail, waiting) go through
//! the [`NodeEffects`] port, which adapters implement behind the SSRF guard, and
//! `code.javascript` through the [`CodeRunner`] port (an embedded engine without I/O:
//! pure as far as checkpoints go).
//!
//! Traversal is breadth-first from the trigger along the connections of the output each
//! node took; a node reached by several paths runs once, when first reached.
//!
//! Steps are checkpoints, written in batches: pure steps (triggers, `data.set`, `flow.*`)
//! wait in memory and go to the [`StepSink`] just before a node with a side effect runs
//! and right after it succeeds, so a crash can repeat pure work (which stored nothing)
//! but never an effect that was recorded. What is still unsaved when the run ends is
//! returned for the caller to store together with the outcome, in one write.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fluxolab_kernel::{Clock, CredentialId, ExecutionId, RunEnvironment, WorkspaceId};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tracing::Instrument;
use uuid::Uuid;

use crate::Definition;
use crate::code::{CODE_NODE_TYPE, CodeLimits, CodeRunner, NoCodeRunner};
use crate::connectors::{ConnectorCatalog, NoConnectors};
use crate::definition::Node;
use crate::sub_workflows::{self, ChildRuns, ChildStep};
use crate::template::Templates;

/// `flow.delay`s at least this long suspend a queued run (it goes back to the queue,
/// due when the wait ends) instead of holding a worker; shorter ones wait in place.
pub const SUSPEND_FROM_MS: u64 = 1000;

/// `http.request`'s timeout when its params set none.
pub const HTTP_DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The longest timeout `http.request` may set.
pub const HTTP_MAX_TIMEOUT_MS: u64 = 300_000;
/// The longest an `email.send` may take, all SMTP commands together.
pub const EMAIL_TIMEOUT: Duration = Duration::from_secs(60);
/// What a lease must last beyond an effect's own timeout before the effect may start:
/// time to record its step afterwards.
pub const EFFECT_LEASE_MARGIN: Duration = Duration::from_secs(5);

/// The timeout of an `http.request` with rendered `params` (`timeout_ms`, default
/// [`HTTP_DEFAULT_TIMEOUT_MS`], at most [`HTTP_MAX_TIMEOUT_MS`]).
pub fn http_timeout(params: &Value) -> Duration {
    Duration::from_millis(
        params["timeout_ms"]
            .as_u64()
            .unwrap_or(HTTP_DEFAULT_TIMEOUT_MS)
            .clamp(1, HTTP_MAX_TIMEOUT_MS),
    )
}

/// How long the run's lease must still last for an effectful node with rendered
/// `params` to start: its own timeout and [`EFFECT_LEASE_MARGIN`].
fn lease_needed_for(node_type: &str, params: &Value) -> Duration {
    let effect = match node_type {
        "http.request" => http_timeout(params),
        "email.send" => EMAIL_TIMEOUT,
        // A connector action is an `http.request` with the default timeout.
        code if crate::connectors::action_of(code).is_some() => http_timeout(&Value::Null),
        _ => Duration::ZERO,
    };
    effect + EFFECT_LEASE_MARGIN
}

/// How a run is being carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// Inline for a caller waiting on the answer (`/test`): delays wait in place.
    Inline,
    /// By a worker from the queue: long delays suspend the run.
    Queued,
}

/// What an effectful node is run for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectContext {
    pub workspace_id: WorkspaceId,
    pub execution_id: ExecutionId,
    pub mode: RunMode,
    /// The effect's idempotency key, set by the engine for each effectful step: the same
    /// on every attempt of that step of that run (see [`EffectContext::for_step`]).
    pub idempotency_key: Option<Uuid>,
}

impl EffectContext {
    /// The context of a run, before any step.
    pub fn of_run(workspace_id: WorkspaceId, execution_id: ExecutionId, mode: RunMode) -> Self {
        Self {
            workspace_id,
            execution_id,
            mode,
            idempotency_key: None,
        }
    }

    /// The context of node `node_id`'s step: its idempotency key is derived from the
    /// execution id and the node id (a UUID v5), so every attempt sends the same one.
    pub fn for_step(self, node_id: &str) -> Self {
        Self {
            idempotency_key: Some(Uuid::new_v5(
                &self.execution_id.as_uuid(),
                node_id.as_bytes(),
            )),
            ..self
        }
    }
}

/// Why an effectful node failed, and whether trying again later may help (a network
/// error may pass; a bad param will not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFailure {
    pub message: String,
    pub retryable: bool,
}

impl NodeFailure {
    /// A failure that another attempt would repeat.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    /// A failure that may pass on a later attempt.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
}

/// A plain message is a permanent failure: retrying would repeat it.
impl From<String> for NodeFailure {
    fn from(message: String) -> Self {
        Self::permanent(message)
    }
}

/// Side effects of nodes, implemented by adapters.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NodeEffects: Send + Sync {
    /// `http.request` with rendered params; the output, or a message for the step error.
    async fn http_request(
        &self,
        context: EffectContext,
        params: Value,
        credential: Option<CredentialId>,
    ) -> Result<Value, NodeFailure>;
    /// `email.send` with rendered params and its SMTP credential.
    async fn send_email(
        &self,
        context: EffectContext,
        params: Value,
        credential: CredentialId,
    ) -> Result<Value, NodeFailure>;
    /// `flow.delay`, waited in place.
    async fn delay(&self, milliseconds: u64);
}

/// Why a checkpoint could not be written, or an effect may not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The worker no longer holds the run's lease: the run stops at once and writes
    /// nothing more (another worker has it, or will).
    #[error("the run's lease is lost")]
    LeaseLost,
    /// The write failed (a later attempt resumes from the last checkpoint).
    #[error("{0}")]
    Failed(String),
}

/// Where finished steps go as checkpoints, before and after each side effect, and what
/// says whether the run may still act.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StepSink: Send + Sync {
    /// Persists `steps`, which follow every step persisted before them.
    async fn record(&self, steps: &[StepRecord]) -> Result<(), SinkError>;
    /// Succeeds when the run may start an effect that takes up to `need`: its lease,
    /// when it has one, still lasts that long (extending it if it must).
    async fn hold_for(&self, need: Duration) -> Result<(), SinkError>;
}

/// A sink that keeps nothing (for runs whose steps are stored at the end).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSink;

#[async_trait]
impl StepSink for NoSink {
    async fn record(&self, _steps: &[StepRecord]) -> Result<(), SinkError> {
        Ok(())
    }

    async fn hold_for(&self, _need: Duration) -> Result<(), SinkError> {
        Ok(())
    }
}

/// One node run.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    pub node_id: String,
    pub node_type: String,
    /// The rendered params.
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    /// The output the run continued on (`main`, `true`, a case…).
    pub route: Option<String>,
    pub started_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    /// The idempotency key an effectful step was sent with (the same on every attempt).
    pub effect_key: Option<String>,
    /// What a `code.javascript` step wrote to `console` (bounded, secrets redacted);
    /// empty for other nodes.
    pub logs: Vec<String>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// The output of the last node that ran.
    Succeeded(Value),
    Failed {
        node_id: String,
        error: String,
        /// Whether a later attempt may succeed.
        retryable: bool,
    },
    /// A long `flow.delay` was reached in a queued run: it resumes at `until`, after
    /// the steps recorded so far.
    Suspended { until: OffsetDateTime },
    /// A `flow.run_workflow` step waits for its child run `child` in a queued run: the
    /// step is not recorded (it runs again on resume and reads the child), the run is
    /// due again when the child ends, or at `until` at the latest.
    AwaitingChild {
        child: ExecutionId,
        until: OffsetDateTime,
    },
    /// The worker lost the run's lease mid-run: it stopped, and nothing more may be
    /// written for it (the holder of the new lease carries on).
    LeaseLost,
}

/// A finished (or suspended) run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    pub outcome: RunOutcome,
    /// Every step of the run, resumed ones included.
    pub steps: Vec<StepRecord>,
    /// How many of `steps` are already stored; the rest are for the caller to store
    /// with the outcome.
    pub saved: usize,
}

impl RunResult {
    /// A run that could not start (its environment's variables could not be read); a
    /// later attempt may succeed.
    pub fn failed_before_start(error: String) -> Self {
        RunResult {
            outcome: RunOutcome::Failed {
                node_id: String::new(),
                error,
                retryable: true,
            },
            steps: Vec::new(),
            saved: 0,
        }
    }

    /// The steps the sink has not stored yet.
    pub fn unsaved(&self) -> &[StepRecord] {
        self.steps.get(self.saved..).unwrap_or_default()
    }
}

/// Runs definitions.
pub struct Engine {
    templates: Templates,
    effects: Arc<dyn NodeEffects>,
    code: Arc<dyn CodeRunner>,
    clock: Arc<dyn Clock>,
    /// Where `flow.run_workflow` starts its runs (none: the node fails).
    children: Option<Arc<dyn ChildRuns>>,
    /// Where connector actions' manifests are read when their steps run.
    connectors: Arc<dyn ConnectorCatalog>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// What running one node led to.
enum NodeRun {
    /// Its output and the output name the run continues on (`None`: stop there).
    Done(Value, Option<String>),
    /// A long delay in a queued run: the step is complete, the run resumes at `until`.
    Suspend {
        output: Value,
        until: OffsetDateTime,
    },
    /// A child run is still running in a queued run: the step is not complete.
    Wait {
        child: ExecutionId,
        until: OffsetDateTime,
    },
}

type NodeResult = Result<NodeRun, NodeFailure>;

/// Whether a node type acts on the world (its step is checkpointed around it). A
/// `webhook.respond` counts: its step is the answer a waiting sender is given.
fn has_side_effect(node_type: &str) -> bool {
    matches!(
        node_type,
        "http.request" | "email.send" | "flow.run_workflow"
    ) || answers_sender(node_type)
        || crate::connectors::action_of(node_type).is_some()
}

/// Whether a node type's output is the answer to the sender of the run's webhook
/// delivery (`webhook.respond`).
pub fn answers_sender(node_type: &str) -> bool {
    node_type == ANSWER_NODE_TYPE
}

/// The type of the node that answers the sender of a webhook delivery.
pub const ANSWER_NODE_TYPE: &str = "webhook.respond";

impl StepRecord {
    /// Whether this step is a successful answer to the run's sender.
    pub fn is_answer(&self) -> bool {
        self.error.is_none() && answers_sender(&self.node_type)
    }
}

impl crate::Definition {
    /// Whether a sender may be waiting for its runs: some node answers the sender of its
    /// webhook delivery, or an MCP client waits for the run's output (`trigger.mcp`).
    pub fn answers_sender(&self) -> bool {
        self.nodes.iter().any(|node| {
            answers_sender(&node.node_type) || node.node_type == crate::mcp::MCP_TRIGGER
        })
    }
}

/// The steps of a run in progress, and how many of them are stored.
struct Progress<'a> {
    steps: Vec<StepRecord>,
    saved: usize,
    sink: &'a dyn StepSink,
}

impl Progress<'_> {
    /// Stores the unsaved steps.
    async fn checkpoint(&mut self) -> Result<(), SinkError> {
        if self.saved < self.steps.len() {
            self.sink.record(&self.steps[self.saved..]).await?;
            self.saved = self.steps.len();
        }
        Ok(())
    }

    fn end(self, outcome: RunOutcome) -> RunResult {
        RunResult {
            outcome,
            steps: self.steps,
            saved: self.saved,
        }
    }

    /// The run stops before (or right after) `node` because the sink refused: the
    /// lease is lost, or a checkpoint failed (retryable).
    fn interrupted(self, node: &Node, error: SinkError) -> RunResult {
        match error {
            SinkError::LeaseLost => self.end(RunOutcome::LeaseLost),
            SinkError::Failed(error) => self.end(RunOutcome::Failed {
                node_id: node.id.clone(),
                error: format!(
                    "node `{}`: the step could not be recorded: {error}",
                    node.id
                ),
                retryable: true,
            }),
        }
    }
}

impl Engine {
    pub fn new(effects: Arc<dyn NodeEffects>, clock: Arc<dyn Clock>) -> Self {
        Self {
            templates: Templates::new(),
            effects,
            code: Arc::new(NoCodeRunner),
            clock,
            children: None,
            connectors: Arc::new(NoConnectors),
        }
    }

    /// The engine, with `flow.run_workflow` starting its runs through `children`.
    pub fn with_children(self, children: Arc<dyn ChildRuns>) -> Self {
        Self {
            children: Some(children),
            ..self
        }
    }

    /// Runs connector actions with the manifests `connectors` holds (without, every
    /// `connector.*` step fails: none is installed).
    pub fn with_connectors(mut self, connectors: Arc<dyn ConnectorCatalog>) -> Self {
        self.connectors = connectors;
        self
    }

    /// Runs `code.javascript` nodes with `runner` (without one, they fail).
    pub fn with_code_runner(mut self, runner: Arc<dyn CodeRunner>) -> Self {
        self.code = runner;
        self
    }

    /// Runs `definition` with `payload` as the trigger's body and `env` as the
    /// environment's variables (`env.NAME` in templates). Steps in `completed` (from
    /// an earlier, interrupted attempt) are not run again: their recorded output is used.
    /// New steps go to `sink` around side effects (see the module documentation).
    pub async fn run(
        &self,
        definition: &Definition,
        payload: Value,
        env: &RunEnvironment,
        context: EffectContext,
        completed: &[StepRecord],
        sink: &dyn StepSink,
    ) -> RunResult {
        let mut progress = Progress {
            steps: Vec::new(),
            saved: 0,
            sink,
        };
        let Some(trigger) = definition.nodes.iter().find(|node| {
            crate::registry::node_type(&node.node_type).is_some_and(|kind| kind.trigger)
        }) else {
            return progress.end(RunOutcome::Failed {
                node_id: String::new(),
                error: "the definition has no trigger".to_owned(),
                retryable: false,
            });
        };
        let mut data = json!({
            "trigger": {"body": payload, "headers": {}, "query": {}},
            "nodes": {},
            "execution": {"id": context.execution_id.to_string()},
            "env": env.variables,
        });
        let mut queue = VecDeque::from([trigger]);
        let mut ran = HashSet::new();
        let mut last_output = Value::Null;
        while let Some(node) = queue.pop_front() {
            if !ran.insert(node.id.as_str()) {
                continue;
            }
            if let Some(done) = completed
                .iter()
                .find(|step| step.node_id == node.id && step.error.is_none())
            {
                let output = done.output.clone().unwrap_or(Value::Null);
                data["nodes"][node.id.as_str()] = json!({"output": output});
                last_output = output;
                if let Some(route) = &done.route {
                    queue.extend(Self::next_nodes(definition, node, route));
                }
                progress.steps.push(done.clone());
                progress.saved = progress.steps.len();
                continue;
            }
            let effectful = has_side_effect(&node.node_type);
            if effectful && let Err(error) = progress.checkpoint().await {
                return progress.interrupted(node, error);
            }
            let context = if effectful {
                context.for_step(&node.id)
            } else {
                context
            };
            let span = tracing::info_span!(
                "step",
                node_id = %node.id,
                node_type = %node.node_type,
                execution_id = %context.execution_id,
                workspace_id = %context.workspace_id,
            );
            let started_at = self.clock.now();
            let mut logs = Vec::new();
            // A code node's params are its source and limits, never templates: its
            // code reads the data itself.
            let rendered = if node.node_type == CODE_NODE_TYPE {
                Ok(node.params.clone())
            } else {
                self.templates.render(&node.params, &data)
            };
            let (input, result) = match rendered {
                Ok(input) => {
                    if effectful
                        && let Err(error) = sink
                            .hold_for(lease_needed_for(&node.node_type, &input))
                            .await
                    {
                        return progress.interrupted(node, error);
                    }
                    let result = if node.node_type == CODE_NODE_TYPE {
                        let (result, written) = self.run_code(&input, &data).instrument(span).await;
                        logs = written;
                        result
                    } else {
                        self.run_node(node, &input, &data, context, started_at)
                            .instrument(span)
                            .await
                    };
                    (input, result)
                }
                Err(error) => (
                    node.params.clone(),
                    Err(NodeFailure::permanent(error.to_string())),
                ),
            };
            let finished_at = self.clock.now();
            let mut recorded_input = input;
            env.redact(&mut recorded_input);
            let mut step = StepRecord {
                node_id: node.id.clone(),
                node_type: node.node_type.clone(),
                input: recorded_input,
                output: None,
                error: None,
                route: None,
                started_at,
                finished_at,
                effect_key: context.idempotency_key.map(|key| key.to_string()),
                logs: redacted_lines(env, logs),
            };
            match result {
                Ok(NodeRun::Done(output, route)) => {
                    data["nodes"][node.id.as_str()] = json!({"output": output});
                    last_output = output.clone();
                    let mut recorded_output = output;
                    env.redact(&mut recorded_output);
                    step.output = Some(recorded_output);
                    step.route = route.clone();
                    progress.steps.push(step);
                    if effectful && let Err(error) = progress.checkpoint().await {
                        return progress.interrupted(node, error);
                    }
                    if let Some(route) = route {
                        queue.extend(Self::next_nodes(definition, node, &route));
                    }
                }
                Ok(NodeRun::Suspend { output, until }) => {
                    step.output = Some(output);
                    step.route = Some("main".to_owned());
                    step.finished_at = until;
                    progress.steps.push(step);
                    return progress.end(RunOutcome::Suspended { until });
                }
                Ok(NodeRun::Wait { child, until }) => {
                    return progress.end(RunOutcome::AwaitingChild { child, until });
                }
                Err(failure) => {
                    let mut message = Value::String(failure.message);
                    env.redact(&mut message);
                    let error = format!("node `{}`: {}", node.id, message.as_str().unwrap_or(""));
                    tracing::debug!(node_id = %node.id, %error, "step failed");
                    step.error = Some(error.clone());
                    progress.steps.push(step);
                    return progress.end(RunOutcome::Failed {
                        node_id: node.id.clone(),
                        error,
                        retryable: failure.retryable,
                    });
                }
            }
        }
        env.redact(&mut last_output);
        progress.end(RunOutcome::Succeeded(last_output))
    }

    /// Runs a `code.javascript` node with `input` (its params) over the run's `data`;
    /// its `console` lines, as written, come back beside the result.
    async fn run_code(&self, input: &Value, data: &Value) -> (NodeResult, Vec<String>) {
        let Some(code) = input["code"].as_str() else {
            return (
                Err(NodeFailure::permanent("params.code must be a string")),
                Vec::new(),
            );
        };
        let limits = CodeLimits::for_params(input, self.code.maxima());
        match self.code.run(code, data, limits).await {
            Ok(output) => (
                Ok(NodeRun::Done(output.value, Some("main".to_owned()))),
                output.logs,
            ),
            Err(failure) => (Err(NodeFailure::permanent(failure.message)), failure.logs),
        }
    }

    /// The nodes that `node`'s output `route` leads to.
    fn next_nodes<'a>(definition: &'a Definition, node: &Node, route: &str) -> Vec<&'a Node> {
        definition
            .connections
            .iter()
            .filter(|connection| connection.from == node.id && connection.output == route)
            .filter_map(|connection| definition.node(&connection.to))
            .collect()
    }

    async fn run_node(
        &self,
        node: &Node,
        input: &Value,
        data: &Value,
        context: EffectContext,
        started_at: OffsetDateTime,
    ) -> NodeResult {
        let main = Some("main".to_owned());
        match node.node_type.as_str() {
            "trigger.manual" | "trigger.webhook" | crate::mcp::MCP_TRIGGER => {
                Ok(NodeRun::Done(data["trigger"]["body"].clone(), main))
            }
            "data.set" => Ok(NodeRun::Done(input["values"].clone(), main)),
            "flow.if" => {
                let result = Templates::truthy(&input["condition"]);
                Ok(NodeRun::Done(
                    json!({"result": result}),
                    Some(result.to_string()),
                ))
            }
            "flow.switch" => {
                let value = match &input["value"] {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                let cases = input["cases"].as_array().cloned().unwrap_or_default();
                let case = if cases
                    .iter()
                    .any(|case| case.as_str() == Some(value.as_str()))
                {
                    value.clone()
                } else {
                    "default".to_owned()
                };
                Ok(NodeRun::Done(
                    json!({"value": value, "case": case}),
                    Some(case),
                ))
            }
            "flow.delay" => {
                let milliseconds = input["milliseconds"]
                    .as_u64()
                    .or_else(|| {
                        input["milliseconds"]
                            .as_str()
                            .and_then(|text| text.trim().parse().ok())
                    })
                    .ok_or_else(|| {
                        NodeFailure::permanent("params.milliseconds must be a whole number")
                    })?;
                let output = json!({"waited_ms": milliseconds});
                if context.mode == RunMode::Queued && milliseconds >= SUSPEND_FROM_MS {
                    let wait = time::Duration::milliseconds(
                        i64::try_from(milliseconds).unwrap_or(i64::MAX),
                    );
                    return Ok(NodeRun::Suspend {
                        output,
                        until: started_at.saturating_add(wait),
                    });
                }
                self.effects.delay(milliseconds).await;
                Ok(NodeRun::Done(output, main))
            }
            "http.request" => {
                let output = self
                    .effects
                    .http_request(context, input.clone(), node.credential_id)
                    .await?;
                Ok(NodeRun::Done(output, main))
            }
            "email.send" => {
                let credential = node
                    .credential_id
                    .ok_or_else(|| NodeFailure::permanent("email.send needs an smtp credential"))?;
                let output = self
                    .effects
                    .send_email(context, input.clone(), credential)
                    .await?;
                Ok(NodeRun::Done(output, main))
            }
            "flow.run_workflow" => {
                let step = sub_workflows::run_step(
                    self.children.as_deref(),
                    self.effects.as_ref(),
                    input,
                    context,
                    started_at,
                )
                .await?;
                Ok(match step {
                    ChildStep::Done(output) => NodeRun::Done(output, main),
                    ChildStep::Wait { child, until } => NodeRun::Wait { child, until },
                })
            }
            "webhook.respond" => Ok(NodeRun::Done(
                json!({
                    "status": input.get("status").cloned().unwrap_or(json!(200)),
                    "headers": input.get("headers").cloned().unwrap_or(json!({})),
                    "body": input.get("body").cloned().unwrap_or(Value::Null),
                }),
                None,
            )),
            code if crate::connectors::action_of(code).is_some() => {
                let output = crate::connectors::run::run_action(
                    self.connectors.as_ref(),
                    self.effects.as_ref(),
                    &self.templates,
                    node,
                    input,
                    context,
                )
                .await?;
                Ok(NodeRun::Done(output, main))
            }
            other => Err(NodeFailure::permanent(format!(
                "unknown node type `{other}`"
            ))),
        }
    }
}

/// `lines` with the run's secret values redacted.
fn redacted_lines(env: &RunEnvironment, lines: Vec<String>) -> Vec<String> {
    if lines.is_empty() {
        return lines;
    }
    let mut value = Value::Array(lines.into_iter().map(Value::String).collect());
    env.redact(&mut value);
    match value {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::String(line) => Some(line),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
