//! One POST to a receiver chosen by a workspace (a usage alert's webhook, a log
//! destination), behind the SSRF guard: no redirects, a 10-second limit, the receiver's
//! `Retry-After` read back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fluxolab_kernel::outbox::AttemptFailure;

use crate::guard::{GuardedResolver, allowed_addresses};

/// How long a receiver has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What a POST got.
#[derive(Debug)]
pub struct Posted {
    pub status_code: Option<u16>,
    pub latency_ms: u32,
    /// `Ok` for a 2xx answer.
    pub result: Result<(), AttemptFailure>,
}

/// POSTs `body` as JSON with `headers` to `url`, reaching internal addresses only when
/// `allow_internal`.
pub async fn post_json(
    allow_internal: bool,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Posted {
    let started = Instant::now();
    let refused = |error: String| Posted {
        status_code: None,
        latency_ms: elapsed_ms(started),
        result: Err(AttemptFailure::new(error)),
    };
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(error) => return refused(format!("not a URL: {error}")),
    };
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    if let Err(error) = allowed_addresses(&host, port, allow_internal).await {
        return refused(format!("refused: {error}"));
    }
    let client = match reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_internal }))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(error) => return refused(error.to_string()),
    };
    let mut request = client
        .post(parsed)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.body(body).send().await {
        Err(error) => refused(format!("request failed: {error}")),
        Ok(response) => {
            let status = response.status();
            Posted {
                status_code: Some(status.as_u16()),
                latency_ms: elapsed_ms(started),
                result: if status.is_success() {
                    Ok(())
                } else {
                    Err(AttemptFailure {
                        error: format!("the receiver answered {status}"),
                        retry_after: retry_after(&response),
                    })
                },
            }
        }
    }
}

/// Milliseconds since `started`.
pub(crate) fn elapsed_ms(started: Instant) -> u32 {
    u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX)
}

/// The seconds of a `Retry-After` header (an HTTP date is not read: the backoff then
/// decides).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
