//! The web console as the `fluxolab` binary serves it: the build embedded at compile
//! time (`fluxolab-console`), behind the HTTP layer's serving rules (proven one by one in
//! `fluxolab-http`'s tests).

use fluxolab_console::Console;

use crate::TestResult;
use crate::helpers::TestApp;

/// The root answers the embedded console's `index.html` (under CI, where `.ci/run` builds
/// the console first, it must be embedded), or without a build the page that says how to
/// make one; the API keeps its own 404s either way.
#[tokio::test]
async fn the_server_answers_the_embedded_console_at_the_root() -> TestResult {
    let console = Console;
    if std::env::var_os("CI").is_some() {
        assert!(
            console.is_built(),
            "CI builds the console before the tests (`cargo xtask console`)"
        );
    }
    let app = TestApp::spawn_api_only().await?;
    let page = app.get("/workflows").await?;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"]
        .to_str()?
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let body = page.bytes().await?;
    match console.get("index.html") {
        Some(index) => {
            assert_eq!(body, index.body.as_ref());
            // Every asset the page names is embedded and served long-cached.
            let html = String::from_utf8(body.to_vec())?;
            let assets: Vec<&str> = html
                .split('"')
                .filter(|part| part.starts_with("/assets/"))
                .collect();
            assert!(!assets.is_empty(), "{html}");
            for asset in assets {
                let response = app.get(asset).await?;
                assert_eq!(response.status(), 200, "{asset}");
                assert_eq!(
                    response.headers()["cache-control"],
                    "public, max-age=31536000, immutable"
                );
            }
        }
        None => {
            assert!(String::from_utf8(body.to_vec())?.contains("cargo xtask console"));
        }
    }
    let missing = app.get("/api/no-such-route").await?;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    Ok(())
}
