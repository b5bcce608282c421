//! The engine: runs a definition from its trigger, node by node, recording a step for
//! each. Pure nodes run here; nodes with side effects (HTTP, e-mail, waiting) go through
//! the [`NodeEffects`] port, which adapters implement behind the SSRF guard.
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

use async_trait::async_trait;
use fluxolab_kernel::{Clock, ExecutionId, RunEnvironment, WorkspaceId};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tracing::Instrument;
use uuid::Uuid;

use crate::Definition;
use crate::definition::Node;
use crate::template::Templates;

/// `flow.delay`s at least this long suspend a queued run (it goes back to the queue,
/// due when the wait ends) instead of holding a worker; shorter ones wait in place.
pub const SUSPEND_FROM_MS: u64 = 1000;

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
        credential: Option<Uuid>,
    ) -> Result<Value, NodeFailure>;
    /// `email.send` with rendered params and its SMTP credential.
    async fn send_email(
        &self,
        context: EffectContext,
        params: Value,
        credential: Uuid,
    ) -> Result<Value, NodeFailure>;
    /// `flow.delay`, waited in place.
    async fn delay(&self, milliseconds: u64);
}

/// Where finished steps go as checkpoints, before and after each side effect.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StepSink: Send + Sync {
    /// Persists `steps`, which follow every step persisted before them.
    async fn record(&self, steps: &[StepRecord]) -> Result<(), String>;
}

/// A sink that keeps nothing (for runs whose steps are stored at the end).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSink;

#[async_trait]
impl StepSink for NoSink {
    async fn record(&self, _steps: &[StepRecord]) -> Result<(), String> {
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
    clock: Arc<dyn Clock>,
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
}

type NodeResult = Result<NodeRun, NodeFailure>;

/// Whether a node type acts on the world (its step is checkpointed around it). A
/// `webhook.respond` counts: its step is the answer a waiting sender is given.
fn has_side_effect(node_type: &str) -> bool {
    matches!(node_type, "http.request" | "email.send" | "webhook.respond")
}

/// The steps of a run in progress, and how many of them are stored.
struct Progress<'a> {
    steps: Vec<StepRecord>,
    saved: usize,
    sink: &'a dyn StepSink,
}

impl Progress<'_> {
    /// Stores the unsaved steps.
    async fn checkpoint(&mut self) -> Result<(), String> {
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

    fn unrecorded(self, node: &Node, error: &str) -> RunResult {
        self.end(RunOutcome::Failed {
            node_id: node.id.clone(),
            error: format!(
                "node `{}`: the step could not be recorded: {error}",
                node.id
            ),
            retryable: true,
        })
    }
}

impl Engine {
    pub fn new(effects: Arc<dyn NodeEffects>, clock: Arc<dyn Clock>) -> Self {
        Self {
            templates: Templates::new(),
            effects,
            clock,
        }
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
                return progress.unrecorded(node, &error);
            }
            let span = tracing::info_span!(
                "step",
                node_id = %node.id,
                node_type = %node.node_type,
                execution_id = %context.execution_id,
                workspace_id = %context.workspace_id,
            );
            let started_at = self.clock.now();
            let (input, result) = match self.templates.render(&node.params, &data) {
                Ok(input) => {
                    let result = self
                        .run_node(node, &input, &data, context, started_at)
                        .instrument(span)
                        .await;
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
                        return progress.unrecorded(node, &error);
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
            "trigger.manual" | "trigger.webhook" => {
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
            "webhook.respond" => Ok(NodeRun::Done(
                json!({
                    "status": input.get("status").cloned().unwrap_or(json!(200)),
                    "headers": input.get("headers").cloned().unwrap_or(json!({})),
                    "body": input.get("body").cloned().unwrap_or(Value::Null),
                }),
                None,
            )),
            other => Err(NodeFailure::permanent(format!(
                "unknown node type `{other}`"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use fluxolab_kernel::SystemClock;

    use super::*;

    fn definition(value: Value) -> Definition {
        serde_json::from_value(value).unwrap_or_default()
    }

    fn context() -> EffectContext {
        EffectContext {
            workspace_id: WorkspaceId::new(),
            execution_id: ExecutionId::new(),
            mode: RunMode::Queued,
        }
    }

    fn engine(effects: MockNodeEffects) -> Engine {
        Engine::new(Arc::new(effects), Arc::new(SystemClock))
    }

    fn three_nodes(threshold: u32) -> Definition {
        definition(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual", "name": "Start"},
                {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {"total": "{{ trigger.body.a + trigger.body.b }}", "who": "{{ trigger.body.name }}"}}},
                {"id": "check", "type": "flow.if", "name": "Big?", "params": {"condition": format!("{{{{ nodes.shape.output.total > {threshold} }}}}")}},
                {"id": "yes", "type": "data.set", "name": "Yes", "params": {"values": {"verdict": "big for {{ nodes.shape.output.who }}"}}},
                {"id": "no", "type": "data.set", "name": "No", "params": {"values": {"verdict": "small"}}}
            ],
            "connections": [
                {"from": "start", "to": "shape"}, {"from": "shape", "to": "check"},
                {"from": "check", "output": "true", "to": "yes"}, {"from": "check", "output": "false", "to": "no"}
            ]
        }))
    }

    #[tokio::test]
    async fn templates_flow_through_nodes_and_if_picks_a_branch() {
        let result = engine(MockNodeEffects::new())
            .run(
                &three_nodes(10),
                json!({"a": 4, "b": 8, "name": "Ada"}),
                &RunEnvironment::default(),
                context(),
                &[],
                &NoSink,
            )
            .await;
        assert_eq!(
            result.outcome,
            RunOutcome::Succeeded(json!({"verdict": "big for Ada"}))
        );
        let ran: Vec<&str> = result
            .steps
            .iter()
            .map(|step| step.node_id.as_str())
            .collect();
        assert_eq!(ran, ["start", "shape", "check", "yes"]);
        assert_eq!(
            result.steps[1].output,
            Some(json!({"total": 12, "who": "Ada"}))
        );
        assert_eq!(result.steps[2].route.as_deref(), Some("true"));

        let small = engine(MockNodeEffects::new())
            .run(
                &three_nodes(100),
                json!({"a": 4, "b": 8, "name": "Ada"}),
                &RunEnvironment::default(),
                context(),
                &[],
                &NoSink,
            )
            .await;
        assert_eq!(
            small.outcome,
            RunOutcome::Succeeded(json!({"verdict": "small"}))
        );
    }

    #[tokio::test]
    async fn templates_see_env_variables_and_records_redact_secrets() {
        let flow = definition(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual", "name": "Start"},
                {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {
                    "url": "{{ env.API_URL }}/v1", "auth": "Bearer {{ env.TOKEN }}"}}}
            ],
            "connections": [{"from": "start", "to": "shape"}]
        }));
        let env = RunEnvironment {
            variables: serde_json::Map::from_iter([
                ("API_URL".to_owned(), json!("https://api.test")),
                ("TOKEN".to_owned(), json!("tok-123456")),
            ]),
            secrets: vec!["tok-123456".to_owned()],
        };
        let result = engine(MockNodeEffects::new())
            .run(&flow, json!({}), &env, context(), &[], &NoSink)
            .await;
        // The run saw the secret; what it records does not.
        assert_eq!(
            result.outcome,
            RunOutcome::Succeeded(
                json!({"url": "https://api.test/v1", "auth": "Bearer [redacted]"})
            )
        );
        assert_eq!(
            result.steps[1].output,
            Some(json!({"url": "https://api.test/v1", "auth": "Bearer [redacted]"}))
        );
        let recorded = serde_json::to_string(&result.steps[1].input).unwrap_or_default();
        assert!(recorded.contains("Bearer [redacted]"), "{recorded}");
        assert!(!recorded.contains("tok-123456"), "{recorded}");
    }

    #[tokio::test]
    async fn a_template_error_fails_the_step_naming_node_and_message() {
        let result = engine(MockNodeEffects::new())
            .run(
                &three_nodes(10),
                json!({"a": 4}),
                &RunEnvironment::default(),
                context(),
                &[],
                &NoSink,
            )
            .await;
        let RunOutcome::Failed { node_id, error, .. } = &result.outcome else {
            panic!("expected a failure, got {:?}", result.outcome);
        };
        assert_eq!(node_id, "shape");
        assert!(
            error.starts_with("node `shape`: template at `params.values.total`"),
            "{error}"
        );
        assert_eq!(result.steps.len(), 2);
        assert_eq!(result.steps[1].error.as_deref(), Some(error.as_str()));
    }

    #[tokio::test]
    async fn effectful_nodes_go_through_the_port_with_rendered_params() {
        let mut effects = MockNodeEffects::new();
        effects
            .expect_http_request()
            .withf(|_, params, credential| {
                params["url"] == "https://api.example.com/users/7" && credential.is_none()
            })
            .times(1)
            .returning(|_, _, _| Ok(json!({"status": 200, "body": {"ok": true}})));
        effects
            .expect_delay()
            .withf(|ms| *ms == 5)
            .times(1)
            .return_const(());
        let flow = definition(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual", "name": "Start"},
                {"id": "wait", "type": "flow.delay", "name": "Wait", "params": {"milliseconds": 5}},
                {"id": "call", "type": "http.request", "name": "Call", "params": {"method": "GET", "url": "https://api.example.com/users/{{ trigger.body.id }}"}},
                {"id": "route", "type": "flow.switch", "name": "Route", "params": {"value": "{{ nodes.call.output.status }}", "cases": ["200", "404"]}},
                {"id": "done", "type": "data.set", "name": "Done", "params": {"values": {"ok": "{{ nodes.call.output.body.ok }}"}}}
            ],
            "connections": [
                {"from": "start", "to": "wait"}, {"from": "wait", "to": "call"}, {"from": "call", "to": "route"},
                {"from": "route", "output": "200", "to": "done"}
            ]
        }));
        let result = engine(effects)
            .run(
                &flow,
                json!({"id": 7}),
                &RunEnvironment::default(),
                context(),
                &[],
                &NoSink,
            )
            .await;
        assert_eq!(result.outcome, RunOutcome::Succeeded(json!({"ok": true})));
        assert_eq!(result.steps[3].route.as_deref(), Some("200"));
    }

    /// Keeps the batches it is given, as node ids.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<Vec<String>>>);

    impl Recorded {
        fn batches(&self) -> Vec<Vec<String>> {
            self.0.lock().map(|r| r.clone()).unwrap_or_default()
        }
    }

    #[async_trait]
    impl StepSink for Recorded {
        async fn record(&self, steps: &[StepRecord]) -> Result<(), String> {
            self.0
                .lock()
                .map_err(|e| e.to_string())?
                .push(steps.iter().map(|step| step.node_id.clone()).collect());
            Ok(())
        }
    }

    fn ids(steps: &[StepRecord]) -> Vec<&str> {
        steps.iter().map(|step| step.node_id.as_str()).collect()
    }

    #[tokio::test]
    async fn a_resumed_run_skips_its_completed_steps() {
        let payload = json!({"a": 4, "b": 8, "name": "Ada"});
        let first = engine(MockNodeEffects::new())
            .run(
                &three_nodes(10),
                payload.clone(),
                &RunEnvironment::default(),
                context(),
                &[],
                &NoSink,
            )
            .await;
        // The process died after two steps: resume from them.
        let sink = Recorded::default();
        let resumed = engine(MockNodeEffects::new())
            .run(
                &three_nodes(10),
                payload,
                &RunEnvironment::default(),
                context(),
                &first.steps[..2],
                &sink,
            )
            .await;
        assert_eq!(resumed.outcome, first.outcome);
        assert_eq!(resumed.steps.len(), 4);
        assert_eq!(ids(resumed.unsaved()), ["check", "yes"], "only new steps");
        assert!(
            sink.batches().is_empty(),
            "pure steps wait for the caller's final write"
        );
    }

    #[tokio::test]
    async fn side_effects_are_checkpointed_before_and_after() {
        let mut effects = MockNodeEffects::new();
        effects
            .expect_http_request()
            .times(1)
            .returning(|_, _, _| Ok(json!({"status": 200})));
        let flow = definition(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual", "name": "Start"},
                {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {"x": 1}}},
                {"id": "call", "type": "http.request", "name": "Call", "params": {"method": "GET", "url": "https://example.com"}},
                {"id": "done", "type": "data.set", "name": "Done", "params": {"values": {"y": 2}}}
            ],
            "connections": [{"from": "start", "to": "shape"}, {"from": "shape", "to": "call"}, {"from": "call", "to": "done"}]
        }));
        let sink = Recorded::default();
        let result = engine(effects)
            .run(
                &flow,
                json!({}),
                &RunEnvironment::default(),
                context(),
                &[],
                &sink,
            )
            .await;
        assert_eq!(result.outcome, RunOutcome::Succeeded(json!({"y": 2})));
        assert_eq!(
            sink.batches(),
            [vec!["start", "shape"], vec!["call"]],
            "pure steps before the call, then the call itself"
        );
        assert_eq!(ids(result.unsaved()), ["done"]);
    }

    #[tokio::test]
    async fn a_long_delay_suspends_a_queued_run_and_waits_inline_otherwise() {
        let flow = definition(json!({
            "nodes": [
                {"id": "start", "type": "trigger.manual", "name": "Start"},
                {"id": "wait", "type": "flow.delay", "name": "Wait", "params": {"milliseconds": 60000}},
                {"id": "after", "type": "data.set", "name": "After", "params": {"values": {"ok": true}}}
            ],
            "connections": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "after"}]
        }));
        let suspended = engine(MockNodeEffects::new())
            .run(
                &flow,
                json!({}),
                &RunEnvironment::default(),
                context(),
                &[],
                &NoSink,
            )
            .await;
        let RunOutcome::Suspended { until } = suspended.outcome else {
            panic!("expected a suspension, got {:?}", suspended.outcome);
        };
        let wait = &suspended.steps[1];
        assert_eq!(until - wait.started_at, time::Duration::seconds(60));
        assert_eq!(wait.finished_at, until);
        assert_eq!(ids(suspended.unsaved()), ["start", "wait"]);

        // Resumed after the wait: the delay is a completed step and is not waited again.
        let resumed = engine(MockNodeEffects::new())
            .run(
                &flow,
                json!({}),
                &RunEnvironment::default(),
                context(),
                &suspended.steps,
                &NoSink,
            )
            .await;
        assert_eq!(resumed.outcome, RunOutcome::Succeeded(json!({"ok": true})));
        assert_eq!(ids(resumed.unsaved()), ["after"]);

        let mut effects = MockNodeEffects::new();
        effects
            .expect_delay()
            .withf(|ms| *ms == 60000)
            .times(1)
            .return_const(());
        let inline = EffectContext {
            mode: RunMode::Inline,
            ..context()
        };
        let waited = engine(effects)
            .run(
                &flow,
                json!({}),
                &RunEnvironment::default(),
                inline,
                &[],
                &NoSink,
            )
            .await;
        assert_eq!(waited.outcome, RunOutcome::Succeeded(json!({"ok": true})));
    }
}
