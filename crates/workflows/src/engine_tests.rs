//! Tests of `engine`.

use std::sync::Mutex;

use fluxolab_kernel::SystemClock;

use super::*;

fn definition(value: Value) -> Definition {
    serde_json::from_value(value).unwrap_or_default()
}

fn context() -> EffectContext {
    EffectContext::of_run(WorkspaceId::new(), ExecutionId::new(), RunMode::Queued)
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
        RunOutcome::Succeeded(json!({"url": "https://api.test/v1", "auth": "Bearer [redacted]"}))
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
    async fn record(&self, steps: &[StepRecord]) -> Result<(), SinkError> {
        self.0
            .lock()
            .map_err(|e| SinkError::Failed(e.to_string()))?
            .push(steps.iter().map(|step| step.node_id.clone()).collect());
        Ok(())
    }

    async fn hold_for(&self, _need: Duration) -> Result<(), SinkError> {
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

/// `start → shape → call (http.request) → done`.
fn calling_flow() -> Definition {
    definition(json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "shape", "type": "data.set", "name": "Shape", "params": {"values": {"x": 1}}},
            {"id": "call", "type": "http.request", "name": "Call", "params": {"method": "GET", "url": "https://example.com", "timeout_ms": 45000}},
            {"id": "done", "type": "data.set", "name": "Done", "params": {"values": {"y": 2}}}
        ],
        "connections": [{"from": "start", "to": "shape"}, {"from": "shape", "to": "call"}, {"from": "call", "to": "done"}]
    }))
}

#[tokio::test]
async fn a_lost_lease_at_a_checkpoint_stops_the_run_before_its_effect() {
    let mut effects = MockNodeEffects::new();
    effects.expect_http_request().never();
    let mut sink = MockStepSink::new();
    sink.expect_record()
        .times(1)
        .returning(|_| Err(SinkError::LeaseLost));
    sink.expect_hold_for().never();
    let result = engine(effects)
        .run(
            &calling_flow(),
            json!({}),
            &RunEnvironment::default(),
            context(),
            &[],
            &sink,
        )
        .await;
    assert_eq!(result.outcome, RunOutcome::LeaseLost);
}

#[tokio::test]
async fn an_effect_starts_only_when_the_lease_lasts_its_timeout_and_the_margin() {
    let mut effects = MockNodeEffects::new();
    effects.expect_http_request().never();
    let mut sink = MockStepSink::new();
    sink.expect_record().times(1).returning(|_| Ok(()));
    sink.expect_hold_for()
        .withf(|need| *need == Duration::from_secs(45) + EFFECT_LEASE_MARGIN)
        .times(1)
        .returning(|_| Err(SinkError::LeaseLost));
    let result = engine(effects)
        .run(
            &calling_flow(),
            json!({}),
            &RunEnvironment::default(),
            context(),
            &[],
            &sink,
        )
        .await;
    assert_eq!(result.outcome, RunOutcome::LeaseLost);
    assert_eq!(ids(&result.steps), ["start", "shape"], "nothing after");
}

#[tokio::test]
async fn every_attempt_of_an_effect_carries_the_same_key_and_records_it() {
    let keys = Arc::new(Mutex::new(Vec::new()));
    let mut effects = MockNodeEffects::new();
    let seen = keys.clone();
    effects
        .expect_http_request()
        .times(2)
        .returning(move |context, _, _| {
            seen.lock()
                .map_err(|error| NodeFailure::permanent(error.to_string()))?
                .push(context.idempotency_key);
            Ok(json!({"status": 200}))
        });
    let run = context();
    let engine = engine(effects);
    let mut recorded = Vec::new();
    for _attempt in 0..2 {
        let result = engine
            .run(
                &calling_flow(),
                json!({}),
                &RunEnvironment::default(),
                run,
                &[],
                &NoSink,
            )
            .await;
        recorded.push(result.steps[2].effect_key.clone());
        assert_eq!(result.steps[1].effect_key, None, "a pure step has no key");
    }
    let keys = keys.lock().map(|keys| keys.clone()).unwrap_or_default();
    let expected = Uuid::new_v5(&run.execution_id.as_uuid(), b"call");
    assert_eq!(keys, [Some(expected), Some(expected)]);
    assert_eq!(
        recorded,
        [Some(expected.to_string()), Some(expected.to_string())]
    );
}
