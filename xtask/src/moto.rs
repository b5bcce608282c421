//! `cargo xtask moto`: moto's server, the AWS Secrets Manager the secret-store tests
//! talk to (`fluxolab_outbound::testing::Moto`), installed at [`MOTO_VERSION`] into
//! `.fluxolab/moto`. `cargo xtask test` passes its path to the tests as `MOTO_SERVER`.

use std::path::PathBuf;

use crate::venv::Tool;

/// The moto release the tests are pinned to.
pub const MOTO_VERSION: &str = "5.2.6";

const MOTO: Tool = Tool {
    dir: "moto",
    package: "moto",
    extras: "server",
    version: MOTO_VERSION,
    executable: "moto_server",
};

/// The `moto_server` executable, installed when missing.
pub fn install() -> Result<PathBuf, String> {
    MOTO.install()
}

/// `cargo xtask moto`: installs moto when missing and prints the server's path.
pub fn run() -> Result<u8, String> {
    let server = install()?;
    println!("{}", server.display());
    Ok(0)
}
