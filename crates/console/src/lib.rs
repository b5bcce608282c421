#![doc = include_str!("../README.md")]

use std::borrow::Cow;

/// The embedded build: every file under `console/dist`, or none when it was not built.
#[derive(rust_embed::Embed)]
#[folder = "../../console/dist/"]
#[allow_missing = true]
struct Dist;

/// One file of the build.
#[derive(Debug, Clone)]
pub struct EmbeddedFile {
    /// Its bytes.
    pub body: Cow<'static, [u8]>,
    /// Its media type, guessed from its extension.
    pub content_type: String,
    /// The hex SHA-256 of its bytes.
    pub sha256: String,
}

/// The console's build as the binary embeds it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Console;

impl Console {
    /// The file at `path` (relative to the build's root: `index.html`, `assets/…`).
    pub fn get(&self, path: &str) -> Option<EmbeddedFile> {
        let file = Dist::get(path)?;
        Some(EmbeddedFile {
            content_type: file.metadata.mimetype().to_owned(),
            sha256: file
                .metadata
                .sha256_hash()
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect(),
            body: file.data,
        })
    }

    /// Whether the binary was built with a console (its `index.html`).
    pub fn is_built(&self) -> bool {
        Dist::get("index.html").is_some()
    }

    /// Every embedded path.
    pub fn paths(&self) -> impl Iterator<Item = Cow<'static, str>> {
        Dist::iter()
    }
}
