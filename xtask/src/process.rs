//! Running child processes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace root (the directory of the top `Cargo.toml`). `cargo run` tells the
/// xtask where its manifest is; the compile-time path is only the fallback, as a binary
/// built in one checkout may be run for another that shares its target directory.
pub fn project_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `cargo`, as the one running this xtask.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(project_root());
    command
}

/// `cargo run` of the `fluxolab` binary.
pub fn fluxolab() -> Command {
    let mut command = cargo();
    command.args([
        "run",
        "--quiet",
        "--package",
        "fluxolab-app",
        "--bin",
        "fluxolab",
        "--",
    ]);
    command
}

/// Builds the `fluxolab` binary in release mode and returns its path (as cargo reports
/// it, whatever the target directory).
pub fn release_fluxolab() -> Result<PathBuf, String> {
    let output = checked_output(cargo().args([
        "build",
        "--quiet",
        "--release",
        "--package",
        "fluxolab-app",
        "--bin",
        "fluxolab",
        "--message-format",
        "json-render-diagnostics",
    ]))?;
    output
        .lines()
        .filter(|line| line.contains(r#""reason":"compiler-artifact""#))
        .find_map(|line| {
            let (_, rest) = line.split_once(r#""executable":""#)?;
            rest.split_once('"').map(|(path, _)| PathBuf::from(path))
        })
        .ok_or_else(|| "cargo built fluxolab but did not say where".to_owned())
}

pub fn nextest_available() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs `command` to completion and returns its exit code.
pub fn status_code(command: &mut Command) -> Result<u8, String> {
    let status = command
        .status()
        .map_err(|error| format!("could not run {:?}: {error}", command.get_program()))?;
    Ok(status
        .code()
        .map_or(1, |code| u8::try_from(code).unwrap_or(1)))
}

/// Runs `command`, failing with its output when it fails.
pub fn checked_output(command: &mut Command) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|error| format!("could not run {:?}: {error}", command.get_program()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{:?} failed: {}{}",
            command.get_program(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
