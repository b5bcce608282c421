//! Python tools pinned to a version, each in its own virtualenv under `.fluxolab/`
//! (reused while it holds that version): schemathesis for `api-check`, moto for the
//! secret-store tests.

use std::path::PathBuf;
use std::process::Command;

use crate::process::{self, project_root};

/// A PyPI package installed into `.fluxolab/<dir>`, run through one of its executables.
pub struct Tool {
    /// The virtualenv's directory under `.fluxolab`.
    pub dir: &'static str,
    /// The distribution's name, as `pip show` knows it.
    pub package: &'static str,
    /// Extras to install with it (`server` for `moto[server]`).
    pub extras: &'static str,
    /// The pinned version.
    pub version: &'static str,
    /// The executable under `bin/`.
    pub executable: &'static str,
}

impl Tool {
    /// The executable's path, installing the pinned version first when it is missing.
    pub fn install(&self) -> Result<PathBuf, String> {
        let venv = project_root().join(".fluxolab").join(self.dir);
        let executable = venv.join("bin").join(self.executable);
        let python = venv.join("bin").join("python");
        let installed = Command::new(&python)
            .args(["-m", "pip", "show", self.package])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
            .is_some_and(|shown| {
                shown
                    .lines()
                    .any(|line| line.trim() == format!("Version: {}", self.version))
            });
        if installed && executable.exists() {
            return Ok(executable);
        }
        eprintln!(
            "xtask: installing {} {} into {}",
            self.package,
            self.version,
            venv.display()
        );
        process::checked_output(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        let requirement = if self.extras.is_empty() {
            format!("{}=={}", self.package, self.version)
        } else {
            format!("{}[{}]=={}", self.package, self.extras, self.version)
        };
        process::checked_output(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &requirement,
        ]))?;
        Ok(executable)
    }
}
