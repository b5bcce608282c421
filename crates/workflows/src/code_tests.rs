//! Tests of `code`: the save-time checks, and the engine's code steps with the runner
//! mocked (the real runtime is proven in the `jsruntime` crate).

use std::collections::HashMap;
use std::sync::Arc;

use fluxolab_kernel::{ExecutionId, RunEnvironment, SystemClock, WorkspaceId};
use serde_json::json;

use super::*;
use crate::engine::{
    EffectContext, Engine, MockNodeEffects, NoSink, RunMode, RunOutcome, RunResult,
};
use crate::registry::node_type;
use crate::validate::validate;

fn definition(code_params: &Value) -> Definition {
    serde_json::from_value(json!({
        "nodes": [
            {"id": "start", "type": "trigger.manual", "name": "Start"},
            {"id": "calc", "type": CODE_NODE_TYPE, "name": "Calc", "params": code_params}
        ],
        "connections": [{"from": "start", "to": "calc"}]
    }))
    .unwrap_or_default()
}

fn maxima() -> CodeLimits {
    CodeLimits {
        memory_mb: 64,
        timeout: Duration::from_millis(5_000),
    }
}

fn messages(errors: &ValidationErrors) -> Vec<String> {
    errors
        .errors()
        .iter()
        .map(|error| format!("{}: {}", error.field, error.message))
        .collect()
}

#[test]
fn the_registry_checks_code_and_limits_statically() {
    let check = |params: Value| {
        node_type(CODE_NODE_TYPE)
            .map(|node| node.check_params(&params))
            .unwrap_or_default()
    };
    assert_eq!(check(json!({"code": "return 1;"})), vec![]);
    assert_eq!(
        check(json!({"code": "  ", "memory_limit_mb": 0, "timeout_ms": "{{ 5 }}"})),
        vec![
            (
                "code".to_owned(),
                format!("must be non-empty source code of at most {MAX_CODE_BYTES} bytes")
            ),
            (
                "memory_limit_mb".to_owned(),
                format!("must be a whole number from 1 to {CEILING_MEMORY_MB}")
            ),
            (
                "timeout_ms".to_owned(),
                format!("must be a whole number from 1 to {CEILING_TIMEOUT_MS}")
            ),
        ]
    );
    assert_eq!(
        check(json!({})),
        vec![("code".to_owned(), "is required".to_owned())]
    );
    let schema = node_type(CODE_NODE_TYPE).map(|node| node.params_schema());
    assert_eq!(
        schema
            .as_ref()
            .map(|schema| &schema["properties"]["timeout_ms"]["maximum"]),
        Some(&json!(CEILING_TIMEOUT_MS))
    );
}

#[tokio::test]
async fn a_syntax_error_names_the_node_line_and_column() {
    let mut runner = MockCodeRunner::new();
    runner.expect_maxima().return_const(maxima());
    runner
        .expect_compile()
        .withf(|code| code == "const x = ;")
        .times(1)
        .returning(|_| {
            Err(CompileError::Syntax(CodeSyntaxError {
                line: 1,
                column: 11,
                message: "SyntaxError: unexpected token in expression: ';'".to_owned(),
            }))
        });
    let mut errors = ValidationErrors::new();
    check_code_nodes(
        &definition(&json!({"code": "const x = ;"})),
        &runner,
        maxima(),
        &mut errors,
    )
    .await;
    assert_eq!(
        messages(&errors),
        vec![
            "definition.nodes[1].params.code: node `calc`: SyntaxError: unexpected token in expression: ';' at line 1, column 11"
                .to_owned()
        ]
    );
}

#[tokio::test]
async fn limits_above_the_instances_maxima_are_refused_when_saving() {
    let mut runner = MockCodeRunner::new();
    runner.expect_maxima().return_const(maxima());
    runner.expect_compile().returning(|_| Ok(()));
    let mut errors = ValidationErrors::new();
    let flow = definition(&json!({"code": "return 1;", "memory_limit_mb": 65, "timeout_ms": 5000}));
    assert!(validate(&flow, &HashMap::new()).is_ok());
    check_code_nodes(&flow, &runner, maxima(), &mut errors).await;
    assert_eq!(
        messages(&errors),
        vec![
            "definition.nodes[1].params.memory_limit_mb: node `calc`: must be at most 64 (this instance's maximum, in MiB)"
                .to_owned()
        ]
    );
}

#[tokio::test]
async fn a_workspace_may_lower_the_maxima_its_nodes_set() {
    let mut runner = MockCodeRunner::new();
    runner.expect_maxima().return_const(maxima());
    runner.expect_compile().returning(|_| Ok(()));
    let workspace = CodeLimits {
        memory_mb: 48,
        timeout: Duration::from_millis(3_000),
    };
    let mut errors = ValidationErrors::new();
    let flow = definition(&json!({"code": "return 1;", "memory_limit_mb": 50, "timeout_ms": 4000}));
    check_code_nodes(&flow, &runner, workspace, &mut errors).await;
    assert_eq!(
        messages(&errors),
        vec![
            "definition.nodes[1].params.memory_limit_mb: node `calc`: must be at most 48 (this workspace's `execution_defaults.code_max_memory_mb`, in MiB)".to_owned(),
            "definition.nodes[1].params.timeout_ms: node `calc`: must be at most 3000 (this workspace's `execution_defaults.code_max_timeout_ms`, in ms)".to_owned(),
        ]
    );
    // A workspace maximum above the instance's does not raise it.
    let generous = CodeLimits {
        memory_mb: 1_024,
        timeout: Duration::from_millis(60_000),
    };
    let mut errors = ValidationErrors::new();
    let flow = definition(&json!({"code": "return 1;", "memory_limit_mb": 65}));
    check_code_nodes(&flow, &runner, generous, &mut errors).await;
    assert_eq!(errors.errors().len(), 1, "{errors:?}");
}

#[tokio::test]
async fn code_the_registry_refuses_is_not_compiled() {
    let mut runner = MockCodeRunner::new();
    runner.expect_maxima().return_const(maxima());
    runner.expect_compile().never();
    let mut errors = ValidationErrors::new();
    check_code_nodes(
        &definition(&json!({"code": 5})),
        &runner,
        maxima(),
        &mut errors,
    )
    .await;
    check_code_nodes(
        &definition(&json!({"code": " "})),
        &runner,
        maxima(),
        &mut errors,
    )
    .await;
    assert!(errors.is_empty());
}

#[test]
fn a_nodes_limits_default_and_are_capped_by_the_maxima() {
    assert_eq!(
        CodeLimits::for_params(&json!({"code": "x"}), maxima()),
        CodeLimits::DEFAULT
    );
    assert_eq!(
        CodeLimits::for_params(
            &json!({"memory_limit_mb": 100, "timeout_ms": 9000}),
            maxima()
        ),
        maxima()
    );
    let low = CodeLimits {
        memory_mb: 8,
        timeout: Duration::from_millis(100),
    };
    assert_eq!(CodeLimits::for_params(&json!({}), low), low);
}

fn env() -> RunEnvironment {
    RunEnvironment {
        variables: serde_json::Map::from_iter([("TOKEN".to_owned(), json!("tok-123456"))]),
        secrets: vec!["tok-123456".to_owned()],
    }
}

async fn run(runner: MockCodeRunner, params: Value) -> RunResult {
    Engine::new(Arc::new(MockNodeEffects::new()), Arc::new(SystemClock))
        .with_code_runner(Arc::new(runner))
        .run(
            &definition(&params),
            json!({"n": 2}),
            &env(),
            EffectContext::of_run(WorkspaceId::new(), ExecutionId::new(), RunMode::Queued),
            &[],
            &NoSink,
        )
        .await
}

#[tokio::test]
async fn a_code_step_gets_the_runs_data_and_records_redacted_output_and_logs() {
    let mut runner = MockCodeRunner::new();
    runner.expect_maxima().return_const(maxima());
    runner
        .expect_run()
        .withf(|code, data, limits| {
            // The code is not rendered as a template; the data carries the secret in clear.
            code == "return '{{ not a template }}' + env.TOKEN;"
                && data["trigger"]["body"] == json!({"n": 2})
                && data["nodes"]["start"]["output"] == json!({"n": 2})
                && data["env"]["TOKEN"] == json!("tok-123456")
                && data["execution"]["id"].is_string()
                && *limits
                    == CodeLimits {
                        memory_mb: 16,
                        timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
                    }
        })
        .times(1)
        .returning(|_, _, _| {
            Ok(CodeOutput {
                value: json!({"auth": "Bearer tok-123456", "n": 2}),
                logs: vec!["token is tok-123456".to_owned()],
            })
        });
    let result = run(
        runner,
        json!({"code": "return '{{ not a template }}' + env.TOKEN;", "memory_limit_mb": 16}),
    )
    .await;
    assert_eq!(
        result.outcome,
        RunOutcome::Succeeded(json!({"auth": "Bearer [redacted]", "n": 2}))
    );
    let step = &result.steps[1];
    assert_eq!(
        step.output,
        Some(json!({"auth": "Bearer [redacted]", "n": 2}))
    );
    assert_eq!(step.logs, vec!["token is [redacted]".to_owned()]);
    assert_eq!(step.route.as_deref(), Some("main"));
    assert!(result.steps[0].logs.is_empty());
}

#[tokio::test]
async fn a_failed_script_fails_the_step_for_good_keeping_its_logs() {
    let mut runner = MockCodeRunner::new();
    runner.expect_maxima().return_const(maxima());
    runner.expect_run().times(1).returning(|_, _, _| {
        Err(CodeFailure {
            kind: CodeFailureKind::TimeLimit,
            message: "the code ran longer than its time limit (2000 ms)".to_owned(),
            logs: vec!["saw tok-123456".to_owned()],
        })
    });
    let result = run(runner, json!({"code": "while (true) {}"})).await;
    assert_eq!(
        result.outcome,
        RunOutcome::Failed {
            node_id: "calc".to_owned(),
            error: "node `calc`: the code ran longer than its time limit (2000 ms)".to_owned(),
            retryable: false,
        }
    );
    assert_eq!(result.steps[1].logs, vec!["saw [redacted]".to_owned()]);
}

#[tokio::test]
async fn without_a_runtime_code_nodes_fail_rather_than_being_skipped() {
    let result = Engine::new(Arc::new(MockNodeEffects::new()), Arc::new(SystemClock))
        .run(
            &definition(&json!({"code": "return 1;"})),
            json!({}),
            &RunEnvironment::default(),
            EffectContext::of_run(WorkspaceId::new(), ExecutionId::new(), RunMode::Inline),
            &[],
            &NoSink,
        )
        .await;
    assert!(
        matches!(result.outcome, RunOutcome::Failed { ref error, retryable: false, .. }
            if error.contains("no JavaScript runtime")),
        "{:?}",
        result.outcome
    );
    assert!(NoCodeRunner.compile("return 1;").await.is_err());
}
