//! `cargo xtask dev`: from a fresh clone to a running server in one command.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::discovery;
use crate::process::{self, project_root};

/// The demo login that `fluxolab seed --demo` creates.
const DEMO_EMAIL: &str = "demo@fluxolab.dev";
const DEMO_PASSWORD: &str = "fluxolab-demo-password";

pub fn run() -> Result<u8, String> {
    let database = discovery::dev_database()?;
    eprintln!("xtask: using {}", database.description);

    // Before the binary: it embeds the console's build.
    crate::console::build_if_stale()?;
    eprintln!("xtask: building fluxolab");
    let code = process::status_code(process::cargo().args([
        "build",
        "--package",
        "fluxolab-app",
        "--bin",
        "fluxolab",
    ]))?;
    if code != 0 {
        return Ok(code);
    }
    let binary = target_dir().join("debug").join("fluxolab");
    for args in [&["migrate"][..], &["seed", "--demo"][..]] {
        let code = process::status_code(
            Command::new(&binary)
                .args(args)
                .current_dir(project_root())
                .env("DATABASE_URL", &database.url),
        )?;
        if code != 0 {
            return Ok(code);
        }
    }

    let bind = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let mut server = Command::new(&binary)
        .arg("serve")
        .current_dir(project_root())
        .env("DATABASE_URL", &database.url)
        .env("BIND_ADDR", &bind)
        .env("APP_SECRET", app_secret()?)
        .spawn()
        .map_err(|error| format!("could not start fluxolab: {error}"))?;

    if wait_until_ready(&bind, &mut server) {
        print_banner(&bind);
    }
    let status = server
        .wait()
        .map_err(|error| format!("fluxolab did not stop cleanly: {error}"))?;
    Ok(status
        .code()
        .map_or(0, |code| u8::try_from(code).unwrap_or(1)))
}

fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}

/// `APP_SECRET` from the environment, else a development secret generated once and kept
/// in `.fluxolab/dev-secret` (so sessions survive restarts).
fn app_secret() -> Result<String, String> {
    if let Ok(secret) = std::env::var("APP_SECRET")
        && !secret.is_empty()
    {
        return Ok(secret);
    }
    let path = project_root().join(".fluxolab").join("dev-secret");
    if let Ok(secret) = std::fs::read_to_string(&path)
        && secret.trim().len() >= 32
    {
        return Ok(secret.trim().to_owned());
    }
    let secret = random_hex(32)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|error| error.to_string())?;
    }
    std::fs::write(&path, &secret)
        .map_err(|error| format!("could not write {}: {error}", path.display()))?;
    Ok(secret)
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open(Path::new("/dev/urandom"))
        .and_then(|mut file| file.read_exact(&mut buffer))
        .map_err(|error| format!("could not read /dev/urandom: {error}"))?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Polls `/readyz` until it answers 200, the server exits, or a minute passes.
fn wait_until_ready(bind: &str, server: &mut std::process::Child) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if matches!(server.try_wait(), Ok(Some(_))) {
            return false;
        }
        if readyz_status(bind) == Some(200) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("xtask: fluxolab did not become ready within a minute");
    false
}

fn readyz_status(bind: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(bind).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {bind}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

fn print_banner(bind: &str) {
    let url = format!("http://{bind}");
    let login_body = format!(r#"{{"email":"{DEMO_EMAIL}","password":"{DEMO_PASSWORD}"}}"#);
    println!(
        "
  FluxoLab is running at {url}

    console       {url}/
    readiness     {url}/readyz
    API browser   {url}/api/docs/
    OpenAPI       {url}/api/openapi.json
    metrics       {url}/metrics

  demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}

  try:
    curl -s {url}/readyz
    curl -s -X POST {url}/api/auth/login -H 'content-type: application/json' \\
      -d '{login_body}'

  Ctrl-C stops the server; `cargo xtask db stop` stops a private database.
"
    );
}
