//! The web console: the built single-page application, served at `/` from files the
//! binary embeds (`app` hands them over through [`ConsoleFiles`]).
//!
//! The rules, each tested in `tests/http/console.rs`:
//! - The console never shadows the API: `/api`, `/api/*`, `/healthz`, `/readyz` and
//!   `/metrics` keep their own routes, and a path there that matches none is the API's
//!   404 (or 405) problem, never the console's page.
//! - `GET`/`HEAD` of an embedded file answers it; of any other path outside `/assets/`,
//!   `index.html` (the client-side router owns those paths); of a missing `/assets/*`
//!   file, a 404 problem (a stale page must not receive HTML for a script).
//! - Hashed assets (`/assets/*`, named by their content) are cached for a year and
//!   immutable; everything else (`index.html` first) is `no-cache`, revalidated by its
//!   `ETag`.
//! - Every console response carries a strict Content-Security-Policy: scripts, styles,
//!   images, fonts and connections from the same origin only; no inline script, no
//!   framing.
//! - A file the build also has gzipped (`<path>.gz`, written by
//!   `console/scripts/precompress.mjs`) is answered gzipped (`Content-Encoding: gzip`, its
//!   own `ETag`) to a request that accepts gzip, and as it is to one that does not; both
//!   carry `Vary: Accept-Encoding`. The API's responses are not compressed.
//! - Without a built console (`cargo build` without Node), every console path answers a
//!   page that says how to build it (`cargo xtask console`).

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

/// The Content-Security-Policy of every console response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `Cache-Control` of hashed assets: their name changes with their content.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of everything else: revalidate every time.
pub const NO_CACHE: &str = "no-cache";

/// One embedded file.
#[derive(Debug, Clone)]
pub struct ConsoleFile {
    /// The file's bytes.
    pub body: Cow<'static, [u8]>,
    /// Its media type, e.g. `text/javascript`.
    pub content_type: String,
    /// A strong validator of its content (a hash, without quotes).
    pub etag: String,
}

/// The files of the built console, by path relative to its root (`index.html`,
/// `assets/index-3f2a.js`). `app` implements it over the embedded build.
pub trait ConsoleFiles: Send + Sync + std::fmt::Debug {
    /// The file at `path`, if the build has it.
    fn get(&self, path: &str) -> Option<ConsoleFile>;

    /// Whether a console was built into this binary at all.
    fn is_built(&self) -> bool {
        self.get("index.html").is_some()
    }
}

/// Whether `path` belongs to the API or the ops routes, which the console never answers.
pub fn is_reserved(path: &str) -> bool {
    path == "/api"
        || path.starts_with("/api/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// What the console answers for a request no route took, or `None` when the request is
/// not the console's (reserved path, or a method other than `GET`/`HEAD`: the caller
/// answers its 404/405 problem).
pub fn respond(
    request: &HttpRequest,
    files: Option<&Arc<dyn ConsoleFiles>>,
) -> Option<HttpResponse> {
    // `observe` routes `HEAD` as `GET`.
    if request.method() != Method::GET || is_reserved(request.path()) {
        return None;
    }
    let Some(files) = files.filter(|files| files.is_built()) else {
        return Some(not_built());
    };
    let path = request.path().trim_start_matches('/');
    let hashed = path.starts_with("assets/");
    let (served, file) = match files.get(path).filter(|_| !path.is_empty()) {
        Some(file) => (path, file),
        // A missing hashed asset is a 404, never the page.
        None if hashed => return None,
        None => ("index.html", files.get("index.html")?),
    };
    let gzipped = files.get(&format!("{served}.gz"));
    Some(serve(
        request,
        &file,
        gzipped.as_ref(),
        if hashed { IMMUTABLE } else { NO_CACHE },
    ))
}

/// Whether the request's `Accept-Encoding` takes gzip (named, without `q=0`).
fn accepts_gzip(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|parameter| {
                parameter
                    .trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// Answers `file`, or its gzipped copy when there is one and the request accepts it.
fn serve(
    request: &HttpRequest,
    file: &ConsoleFile,
    gzipped: Option<&ConsoleFile>,
    cache_control: &'static str,
) -> HttpResponse {
    let chosen = gzipped.filter(|_| accepts_gzip(request));
    let body = chosen.map_or(&file.body, |gzipped| &gzipped.body);
    let etag = format!("\"{}\"", chosen.map_or(&file.etag, |gzipped| &gzipped.etag));
    let unchanged = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if unchanged {
        HttpResponse::NotModified().finish()
    } else {
        HttpResponse::Ok()
            .content_type(file.content_type.as_str())
            .body(body.clone().into_owned())
    };
    let headers = response.headers_mut();
    if gzipped.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if chosen.is_some() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    secure(response)
}

/// The page of a binary built without the console.
fn not_built() -> HttpResponse {
    let response = HttpResponse::build(StatusCode::OK)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, NO_CACHE))
        .body(NOT_BUILT_PAGE);
    secure(response)
}

/// Adds the headers every console response carries.
fn secure(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

const NOT_BUILT_PAGE: &str = "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>FluxoLab: the console is not built</title></head>
<body>
<h1>FluxoLab is running; its web console is not built into this binary</h1>
<p>The API answers under <a href=\"/api/docs/\">/api/docs/</a>
(<a href=\"/api/openapi.json\">OpenAPI document</a>).</p>
<p>To build the console (Node.js 20 or later and npm), from the repository:</p>
<pre>cargo xtask console      # npm ci + vite build into console/dist
cargo build              # embeds console/dist into fluxolab</pre>
<p><code>cargo xtask dev</code> does both when the console's sources changed.
See docs/console.md.</p>
</body>
</html>
";

#[cfg(test)]
mod tests {
    use super::is_reserved;

    #[test]
    fn the_api_and_ops_paths_are_reserved_and_nothing_else() {
        for path in [
            "/api",
            "/api/",
            "/api/nope",
            "/api/docs/",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(is_reserved(path), "{path}");
        }
        for path in [
            "/",
            "/apis",
            "/workflows",
            "/healthz/x",
            "/metricsx",
            "/assets/a.js",
        ] {
            assert!(!is_reserved(path), "{path}");
        }
    }
}
