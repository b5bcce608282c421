//! `cargo xtask standard-webhooks`: the reference Python implementation of Standard
//! Webhooks (`standardwebhooks` on PyPI), the independent signer and verifier the
//! webhook signature tests use (`crates/app/tests/standard_webhooks.py`), installed at
//! [`VERSION`] into `.fluxolab/standard-webhooks`. `cargo xtask test` passes its Python
//! to the tests as `STANDARD_WEBHOOKS_PYTHON`.

use std::path::PathBuf;

use crate::venv::Tool;

/// The `standardwebhooks` release the tests are pinned to.
pub const VERSION: &str = "1.1.0";

const STANDARD_WEBHOOKS: Tool = Tool {
    dir: "standard-webhooks",
    package: "standardwebhooks",
    extras: "",
    version: VERSION,
    executable: "python",
};

/// The virtualenv's `python`, with `standardwebhooks` installed when missing.
pub fn install() -> Result<PathBuf, String> {
    STANDARD_WEBHOOKS.install()
}
