//! The web console (`console/`, an npm project): `cargo xtask console` builds it into
//! `console/dist` (which the `fluxolab` binary embeds), `cargo xtask openapi [--check]`
//! regenerates its typed API client from the OpenAPI document (or fails when the
//! committed one differs), `cargo xtask e2e [--screenshots]` runs its Playwright tests in
//! Debian's Chromium against a server on a fresh test database, and `cargo xtask dev`
//! rebuilds it when its sources changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use crate::discovery;
use crate::process::{self, project_root};

/// The generated types of the API client, committed.
const SCHEMA: &str = "src/api/schema.d.ts";

fn console_dir() -> PathBuf {
    project_root().join("console")
}

/// `cargo xtask console`: `npm ci` when the lock file changed since the last one, then
/// `vite build`.
pub fn run() -> Result<u8, String> {
    require_node()?;
    build()
}

/// `cargo xtask dev`'s step: rebuilds the console when a source is newer than its build;
/// without Node, says how the console would be built and goes on.
pub fn build_if_stale() -> Result<(), String> {
    let dir = console_dir();
    let built = modified(&dir.join("dist").join("index.html"));
    let sources = newest_source(&dir);
    if built.is_some() && built >= sources {
        return Ok(());
    }
    if require_node().is_err() {
        eprintln!(
            "xtask: the console's sources changed but Node.js and npm are not installed; \
             the server will serve the build it has (or a page saying how to build it)"
        );
        return Ok(());
    }
    match build()? {
        0 => Ok(()),
        code => Err(format!("the console's build failed (exit code {code})")),
    }
}

/// `cargo xtask openapi [--check]`.
pub fn openapi(args: &[String]) -> Result<u8, String> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => return Err("usage: cargo xtask openapi [--check]".into()),
    };
    require_node()?;
    install()?;
    let target = target_dir();
    std::fs::create_dir_all(&target).map_err(|error| error.to_string())?;
    let document = target.join("openapi.json");
    let code = process::status_code(
        process::cargo()
            .args([
                "run",
                "--quiet",
                "--package",
                "fluxolab-http",
                "--example",
                "openapi_json",
                "--",
            ])
            .arg(&document),
    )?;
    if code != 0 {
        return Ok(code);
    }
    let committed = console_dir().join(SCHEMA);
    let output = if check {
        target.join("schema.d.ts")
    } else {
        committed.clone()
    };
    let code = process::status_code(
        npm_command("node")
            .arg("scripts/generate-api.mjs")
            .arg(&document)
            .arg(&output),
    )?;
    if code != 0 || !check {
        return Ok(code);
    }
    let fresh = std::fs::read(&output).map_err(|error| error.to_string())?;
    let current = std::fs::read(&committed).unwrap_or_default();
    if fresh == current {
        eprintln!("xtask: console/{SCHEMA} matches the OpenAPI document");
        Ok(0)
    } else {
        eprintln!(
            "xtask: console/{SCHEMA} differs from the OpenAPI document; run `cargo xtask \
             openapi` and commit the result (and adapt the console to the API's change)"
        );
        Ok(1)
    }
}

/// `cargo xtask e2e [--screenshots] [PLAYWRIGHT_ARGS…]`: the console (rebuilt when
/// stale), a server on a fresh test database (the `console_e2e` example of
/// `fluxolab-app`), and Playwright against it in Chromium (`CHROMIUM`, else
/// `/usr/bin/chromium`). `--screenshots` saves every page under `docs/console/`.
pub fn e2e(args: &[String]) -> Result<u8, String> {
    require_node()?;
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.is_file() {
        return Err(format!(
            "no Chromium at {}: install Debian's `chromium` package (or set CHROMIUM); \
             Playwright downloads no browser here",
            chromium.display()
        ));
    }
    install()?;
    build_if_stale()?;
    let server = discovery::test_server()?;
    eprintln!("xtask: e2e against {}", server.description);
    let mut command = process::cargo();
    command
        .args([
            "run",
            "--quiet",
            "--package",
            "fluxolab-app",
            "--example",
            "console_e2e",
            "--",
        ])
        .env("TEST_DATABASE_URL", &server.url)
        .env("CHROMIUM", &chromium);
    for arg in args {
        if arg == "--screenshots" {
            let folder = project_root().join("docs").join("console");
            std::fs::create_dir_all(&folder).map_err(|error| error.to_string())?;
            command.env("CONSOLE_SCREENSHOTS", folder);
        } else {
            command.arg(arg);
        }
    }
    process::status_code(&mut command)
}

fn build() -> Result<u8, String> {
    install()?;
    eprintln!("xtask: building the console (vite build)");
    process::status_code(npm_command("npm").args(["run", "build"]))
}

/// `npm ci` unless `node_modules` was installed from the current lock file.
fn install() -> Result<(), String> {
    let dir = console_dir();
    let lock = std::fs::read(dir.join("package-lock.json"))
        .map_err(|error| format!("console/package-lock.json: {error}"))?;
    let stamp = dir.join("node_modules").join(".fluxolab-lock");
    if std::fs::read(&stamp).is_ok_and(|installed| installed == lock) {
        return Ok(());
    }
    eprintln!("xtask: installing the console's packages (npm ci)");
    // Playwright's package downloads no browser on install; this says so explicitly.
    let code = process::status_code(
        npm_command("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"),
    )?;
    if code != 0 {
        return Err(format!("npm ci failed (exit code {code})"));
    }
    std::fs::write(&stamp, lock).map_err(|error| format!("{}: {error}", stamp.display()))
}

fn npm_command(program: &str) -> Command {
    let mut command = Command::new(program);
    command.current_dir(console_dir());
    command
}

fn require_node() -> Result<(), String> {
    for program in ["node", "npm"] {
        let found = Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found {
            return Err(format!(
                "`{program}` was not found: the console needs Node.js 20 or later with npm"
            ));
        }
    }
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
}

/// The newest modification among the files the build reads (not `node_modules`,
/// not `dist`).
fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return newest;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if matches!(name.to_str(), Some("node_modules" | "dist")) {
            continue;
        }
        let path = entry.path();
        let candidate = if path.is_dir() {
            newest_source(&path)
        } else {
            modified(&path)
        };
        newest = newest.max(candidate);
    }
    newest
}
