//! One script in a fresh QuickJS runtime of its own, on the calling thread (which must
//! not be an async worker: see `JsRunner`).
//!
//! The context has JavaScript's standard built-ins and nothing else: no `require`,
//! `import` loader, `fetch`, timers, filesystem or process (QuickJS's `std`/`os` modules
//! are not linked). The runtime's memory limit bounds the heap; an interrupt handler
//! stops the script at its deadline (QuickJS polls it in loops, calls and regular
//! expressions). The body is wrapped in an `async function` so that it may `return`
//! and `await`; the promise must settle from its own jobs.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use fluxolab_workflows::code::{
    CodeFailure, CodeFailureKind, CodeLimits, CodeOutput, CodeSyntaxError, CompileError,
    MAX_OUTPUT_BYTES,
};
use rquickjs::context::EvalOptions;
use rquickjs::function::Rest;
use rquickjs::promise::PromiseState;
use rquickjs::{
    CatchResultExt, CaughtError, Coerced, Context, Ctx, Function, Object, Runtime, Value,
};
use serde_json::Value as Json;

use crate::console::Console;

/// The script name errors point into (`code:3:5`).
const FILE: &str = "code";
/// Lines the wrapper puts before the body: a body's line 1 is the script's line 2.
const PRELUDE_LINES: u32 = 1;
/// The deepest JavaScript stack (the blocking thread has 2 MiB).
const STACK_BYTES: usize = 512 * 1024;

/// The script run for a body: a function of the run's data.
fn wrap(code: &str) -> String {
    format!("(async function (trigger, nodes, env, execution) {{\n{code}\n}})")
}

fn options() -> EvalOptions {
    let mut options = EvalOptions::default();
    options.filename = Some(FILE.to_owned());
    options.strict = true;
    options
}

/// A fresh runtime and context under `limits`. The context is dropped first.
struct Sandbox {
    context: Context,
    _runtime: Runtime,
    limits: CodeLimits,
    deadline: Instant,
    interrupted: Rc<Cell<bool>>,
}

impl Sandbox {
    fn new(limits: CodeLimits) -> Result<Self, rquickjs::Error> {
        let runtime = Runtime::new()?;
        let bytes = limits.memory_mb.saturating_mul(1024 * 1024);
        runtime.set_memory_limit(usize::try_from(bytes).unwrap_or(usize::MAX));
        runtime.set_max_stack_size(STACK_BYTES);
        let deadline = Instant::now() + limits.timeout;
        let interrupted = Rc::new(Cell::new(false));
        let flag = interrupted.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let late = Instant::now() >= deadline;
            if late {
                flag.set(true);
            }
            late
        })));
        let context = Context::full(&runtime)?;
        Ok(Self {
            context,
            _runtime: runtime,
            limits,
            deadline,
            interrupted,
        })
    }

    fn time_limit(&self) -> String {
        format!(
            "the code ran longer than its time limit ({} ms)",
            self.limits.timeout.as_millis()
        )
    }

    fn memory_limit(&self) -> String {
        format!(
            "the code needed more than its memory limit ({} MiB)",
            self.limits.memory_mb
        )
    }

    /// What stopped a script, as a failure kind and message.
    fn classify(&self, stop: Stop<'_>) -> (CodeFailureKind, String) {
        if self.interrupted.get() || Instant::now() >= self.deadline {
            return (CodeFailureKind::TimeLimit, self.time_limit());
        }
        match stop {
            Stop::Pending => (
                CodeFailureKind::Thrown,
                "the code returned a promise that never settles (there are no timers or I/O to wait for)"
                    .to_owned(),
            ),
            Stop::Output(message) => (CodeFailureKind::Output, message),
            Stop::Internal(message) => (CodeFailureKind::Runtime, message),
            Stop::Caught(caught) => {
                let thrown = Thrown::of(caught);
                if thrown.out_of_memory() {
                    (CodeFailureKind::MemoryLimit, self.memory_limit())
                } else {
                    (CodeFailureKind::Thrown, thrown.describe())
                }
            }
        }
    }
}

/// Why a script stopped without a value.
enum Stop<'js> {
    /// It threw (or its promise rejected, or the runtime failed).
    Caught(CaughtError<'js>),
    /// Its promise is still pending with no job left to run.
    Pending,
    /// Its value could not become the step's output.
    Output(String),
    /// The runtime could not set the run up.
    Internal(String),
}

impl<'js> From<CaughtError<'js>> for Stop<'js> {
    fn from(caught: CaughtError<'js>) -> Self {
        Stop::Caught(caught)
    }
}

/// A thrown value, read out of the runtime.
struct Thrown {
    name: String,
    message: String,
    /// Line and column in the body (1-based), when the stack points into it.
    at: Option<(u32, u32)>,
}

impl Thrown {
    fn of(caught: CaughtError<'_>) -> Self {
        match caught {
            CaughtError::Exception(exception) => Thrown {
                name: exception
                    .get::<_, Coerced<String>>("name")
                    .map(|name| name.0)
                    .unwrap_or_default(),
                message: exception.message().unwrap_or_default(),
                at: exception.stack().as_deref().and_then(location),
            },
            CaughtError::Value(value) => Thrown {
                name: String::new(),
                message: value
                    .get::<Coerced<String>>()
                    .map(|text| text.0)
                    .unwrap_or_else(|_| "a value that is not an Error".to_owned()),
                at: None,
            },
            CaughtError::Error(rquickjs::Error::Allocation) => Thrown {
                name: "InternalError".to_owned(),
                message: "out of memory".to_owned(),
                at: None,
            },
            CaughtError::Error(error) => Thrown {
                name: String::new(),
                message: error.to_string(),
                at: None,
            },
        }
    }

    fn out_of_memory(&self) -> bool {
        self.name == "InternalError" && self.message == "out of memory"
    }

    /// `Name: message (line L, column C)`.
    fn describe(&self) -> String {
        let mut text = if self.name.is_empty() {
            format!("uncaught {}", self.message)
        } else {
            format!("{}: {}", self.name, self.message)
        };
        if let Some((line, column)) = self.at {
            text.push_str(&format!(" (line {line}, column {column})"));
        }
        text
    }
}

/// The body's line and column of the first frame of `stack` in the script
/// (`at … (code:3:5)`).
fn location(stack: &str) -> Option<(u32, u32)> {
    let pattern = format!("{FILE}:");
    stack.match_indices(&pattern).find_map(|(index, _)| {
        let rest = &stack[index + pattern.len()..];
        let mut parts = rest.splitn(3, ':');
        let line: u32 = parts.next()?.parse().ok()?;
        let column: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let column: u32 = column.parse().ok()?;
        Some((line.saturating_sub(PRELUDE_LINES).max(1), column))
    })
}

/// Compiles `code` without running its body (the wrapper only defines the function).
pub(crate) fn compile(code: &str, limits: CodeLimits) -> Result<(), CompileError> {
    let sandbox = Sandbox::new(limits)
        .map_err(|error| CompileError::Limit(format!("the code could not be compiled: {error}")))?;
    sandbox.context.with(|ctx| {
        let compiled = ctx
            .eval_with_options::<Value, _>(wrap(code), options())
            .catch(&ctx);
        let Err(caught) = compiled else {
            return Ok(());
        };
        if sandbox.interrupted.get() {
            return Err(CompileError::Limit(format!(
                "compiling took longer than {} ms",
                limits.timeout.as_millis()
            )));
        }
        let thrown = Thrown::of(caught);
        match thrown.at {
            Some((line, column)) if thrown.name == "SyntaxError" => {
                Err(CompileError::Syntax(CodeSyntaxError {
                    line,
                    column,
                    message: format!("SyntaxError: {}", thrown.message),
                }))
            }
            _ if thrown.out_of_memory() => Err(CompileError::Limit(
                "the code is too large to compile within its memory limit".to_owned(),
            )),
            _ => Err(CompileError::Limit(thrown.describe())),
        }
    })
}

/// Runs `code` with the run's data (`data_json`: an object with `trigger`, `nodes`,
/// `env` and `execution`) under `limits`.
pub(crate) fn run(
    code: &str,
    data_json: &str,
    limits: CodeLimits,
) -> Result<CodeOutput, CodeFailure> {
    let console = Rc::new(RefCell::new(Console::default()));
    let sandbox = match Sandbox::new(limits) {
        Ok(sandbox) => sandbox,
        Err(error) => {
            return Err(CodeFailure {
                kind: CodeFailureKind::Runtime,
                message: format!("the JavaScript runtime could not start: {error}"),
                logs: Vec::new(),
            });
        }
    };
    let outcome = sandbox.context.with(|ctx| {
        evaluate(&ctx, code, data_json, &console, &sandbox).map_err(|stop| sandbox.classify(stop))
    });
    let logs = std::mem::take(&mut *console.borrow_mut()).into_lines();
    match outcome {
        Ok(value) => Ok(CodeOutput { value, logs }),
        Err((kind, message)) => Err(CodeFailure {
            kind,
            message,
            logs,
        }),
    }
}

fn evaluate<'js>(
    ctx: &Ctx<'js>,
    code: &str,
    data_json: &str,
    console: &Rc<RefCell<Console>>,
    sandbox: &Sandbox,
) -> Result<Json, Stop<'js>> {
    install_console(ctx, console).catch(ctx)?;
    let function: Function = ctx.eval_with_options(wrap(code), options()).catch(ctx)?;
    let data = ctx.json_parse(data_json).catch(ctx)?;
    let Some(data) = data.into_object() else {
        return Err(Stop::Internal("the run's data is not an object".to_owned()));
    };
    let args = (
        data.get::<_, Value>("trigger").catch(ctx)?,
        data.get::<_, Value>("nodes").catch(ctx)?,
        data.get::<_, Value>("env").catch(ctx)?,
        data.get::<_, Value>("execution").catch(ctx)?,
    );
    let returned: Value = function.call(args).catch(ctx)?;
    let settled = settle(ctx, returned, sandbox.deadline)?;
    to_json(ctx, settled)
}

/// The value a returned promise settles to, running its jobs (until the deadline).
fn settle<'js>(
    ctx: &Ctx<'js>,
    returned: Value<'js>,
    deadline: Instant,
) -> Result<Value<'js>, Stop<'js>> {
    let Some(promise) = returned.as_promise().cloned() else {
        return Ok(returned);
    };
    loop {
        match promise.state() {
            PromiseState::Pending => {
                if Instant::now() >= deadline || !ctx.execute_pending_job() {
                    return Err(Stop::Pending);
                }
            }
            PromiseState::Resolved | PromiseState::Rejected => {
                return match promise.result::<Value>() {
                    Some(result) => Ok(result.catch(ctx)?),
                    None => Err(Stop::Pending),
                };
            }
        }
    }
}

/// The step's output: `value` through `JSON.stringify` (`undefined` is `null`).
fn to_json<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Result<Json, Stop<'js>> {
    let text = match ctx.json_stringify(value).catch(ctx) {
        Ok(Some(text)) => text.to_string().catch(ctx)?,
        Ok(None) => return Ok(Json::Null),
        Err(CaughtError::Exception(exception))
            if exception.message().as_deref() != Some("out of memory") =>
        {
            let thrown = Thrown::of(CaughtError::Exception(exception));
            return Err(Stop::Output(format!(
                "the returned value is not JSON: {}",
                thrown.describe()
            )));
        }
        Err(caught) => return Err(caught.into()),
    };
    if text.len() > MAX_OUTPUT_BYTES {
        return Err(Stop::Output(format!(
            "the returned value is larger than {MAX_OUTPUT_BYTES} bytes as JSON"
        )));
    }
    serde_json::from_str(&text)
        .map_err(|error| Stop::Output(format!("the returned value is not JSON: {error}")))
}

/// `console.log`, `info`, `debug`, `warn` and `error`, writing to `sink`.
fn install_console<'js>(ctx: &Ctx<'js>, sink: &Rc<RefCell<Console>>) -> rquickjs::Result<()> {
    let console = Object::new(ctx.clone())?;
    for (name, prefix) in [
        ("log", ""),
        ("info", ""),
        ("debug", ""),
        ("warn", "[warn] "),
        ("error", "[error] "),
    ] {
        let sink = sink.clone();
        let function = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
            if sink.borrow().is_full() {
                sink.borrow_mut().push(String::new());
                return;
            }
            let parts: Vec<String> = args.0.iter().map(|value| show(&ctx, value)).collect();
            sink.borrow_mut()
                .push(format!("{prefix}{}", parts.join(" ")));
        })?;
        console.set(name, function)?;
    }
    ctx.globals().set("console", console)
}

/// How `console` shows a value: strings as they are, errors as `Name: message`, other
/// values as JSON.
fn show<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> String {
    if let Some(text) = value.as_string() {
        return text.to_string().unwrap_or_default();
    }
    if value.is_undefined() {
        return "undefined".to_owned();
    }
    if value.is_function() {
        return "[Function]".to_owned();
    }
    if let Some(exception) = value.as_exception() {
        return Thrown::of(CaughtError::Exception(exception.clone())).describe();
    }
    match ctx.json_stringify(value.clone()) {
        Ok(Some(text)) => text.to_string().unwrap_or_default(),
        Ok(None) => "undefined".to_owned(),
        Err(_) => {
            // A cycle or a BigInt: the coerced string instead.
            let _ = ctx.catch();
            value
                .get::<Coerced<String>>()
                .map(|text| text.0)
                .unwrap_or_else(|_| {
                    let _ = ctx.catch();
                    "[unprintable]".to_owned()
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_read_from_the_first_frame_in_the_script() {
        assert_eq!(location("    at code:3:5\n"), Some((2, 5)));
        assert_eq!(
            location("    at <anonymous> (code:4:11)\n    at <eval> (code:1:1)\n"),
            Some((3, 11))
        );
        assert_eq!(location("    at <eval> (native)\n"), None);
    }
}
