//! Writes the OpenAPI document `/api/openapi.json` serves, without a server or a
//! database, to the file named by the first argument (standard output without one).
//! `cargo xtask openapi` runs it to regenerate the console's typed API client.

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let document = fluxolab_http::openapi::document()?;
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');
    match std::env::args_os().nth(1) {
        Some(path) => std::fs::write(path, text)?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(())
}
