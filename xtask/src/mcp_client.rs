//! `cargo xtask mcp-client`: the official MCP Python SDK (`mcp` on PyPI), the independent
//! client the MCP server's tests drive (`crates/app/tests/mcp_client.py`), installed at
//! [`MCP_VERSION`] into `.fluxolab/mcp-client`. `cargo xtask test` passes its Python to
//! the tests as `MCP_CLIENT_PYTHON`.

use std::path::PathBuf;

use crate::venv::Tool;

/// The `mcp` release the tests are pinned to.
pub const MCP_VERSION: &str = "2.3.0";

const MCP: Tool = Tool {
    dir: "mcp-client",
    package: "mcp",
    extras: "",
    version: MCP_VERSION,
    executable: "python",
};

/// The virtualenv's `python`, with `mcp` installed when missing.
pub fn install() -> Result<PathBuf, String> {
    MCP.install()
}

/// `cargo xtask mcp-client`: installs the client when missing and prints its Python.
pub fn run() -> Result<u8, String> {
    let python = install()?;
    println!("{}", python.display());
    Ok(0)
}
