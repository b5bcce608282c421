//! Waiting for another task or process to do something: poll with a deadline, never a
//! fixed sleep. (Time that a rule measures is moved with a `ManualClock` instead.)

use std::time::{Duration, Instant};

use super::Error;

/// How often a condition is checked again.
const EVERY: Duration = Duration::from_millis(25);

/// Checks `probe` until it gives `Some`, for at most `within`; `None` if it never did.
pub async fn poll<T>(
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<Option<T>, Error>,
) -> Result<Option<T>, Error> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe().await? {
            return Ok(Some(found));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Like [`poll`], failing with "`what` never happened" when `within` has passed.
pub async fn wait_for<T>(
    what: &str,
    within: Duration,
    probe: impl AsyncFnMut() -> Result<Option<T>, Error>,
) -> Result<T, Error> {
    poll(within, probe)
        .await?
        .ok_or_else(|| format!("{what} never happened (waited {within:?})").into())
}

/// Waits until `holds` answers true, failing with `what` after `within`.
pub async fn eventually(
    what: &str,
    within: Duration,
    mut holds: impl AsyncFnMut() -> Result<bool, Error>,
) -> Result<(), Error> {
    wait_for(what, within, async || Ok(holds().await?.then_some(()))).await
}

/// Waits (up to 20 s) until a server at `base` answers `GET /healthz` at all; its status.
pub async fn healthz_answered(base: &str) -> Result<u16, Error> {
    let client = reqwest::Client::new();
    let url = format!("{base}/healthz");
    wait_for("an answer to /healthz", Duration::from_secs(20), || async {
        Ok(client
            .get(&url)
            .send()
            .await
            .ok()
            .map(|response| response.status().as_u16()))
    })
    .await
}

/// Waits up to `within` for `child` to exit; its exit status, or `None` if it is still
/// running.
pub async fn exit_of(
    child: &mut std::process::Child,
    within: Duration,
) -> Result<Option<std::process::ExitStatus>, Error> {
    poll(within, async || Ok(child.try_wait()?)).await
}
