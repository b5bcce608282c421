//! The embedded web console (`fluxolab-console`) handed to the HTTP layer, which serves
//! it (`fluxolab_http::console`).

use fluxolab_console::Console;
use fluxolab_http::console::{ConsoleFile, ConsoleFiles};

/// The console this binary was built with.
#[derive(Debug, Default)]
pub struct EmbeddedConsole(Console);

impl ConsoleFiles for EmbeddedConsole {
    fn get(&self, path: &str) -> Option<ConsoleFile> {
        self.0.get(path).map(|file| ConsoleFile {
            content_type: with_charset(file.content_type),
            body: file.body,
            etag: file.sha256,
        })
    }

    fn is_built(&self) -> bool {
        self.0.is_built()
    }
}

/// Text is UTF-8 (Vite writes nothing else); saying so spares the browser a guess.
fn with_charset(content_type: String) -> String {
    let textual = content_type.starts_with("text/")
        || matches!(
            content_type.as_str(),
            "application/javascript" | "application/json" | "image/svg+xml"
        );
    if textual && !content_type.contains("charset") {
        format!("{content_type}; charset=utf-8")
    } else {
        content_type
    }
}

#[cfg(test)]
mod tests {
    use super::with_charset;

    #[test]
    fn text_says_utf_8_and_binaries_do_not() {
        assert_eq!(with_charset("text/html".into()), "text/html; charset=utf-8");
        assert_eq!(
            with_charset("application/javascript".into()),
            "application/javascript; charset=utf-8"
        );
        assert_eq!(with_charset("image/png".into()), "image/png");
    }
}
