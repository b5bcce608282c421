//! The database lost under a running server: every route answers `503
//! storage_unavailable` (problem+json, `Retry-After`) and never a 500, `/readyz` says
//! the service is not ready, and once the database is back the same requests succeed
//! again on the same server. `GET /api/auth/me` needs no database while the process's
//! auth cache holds the profile (the cache is trusted until its listener notices the
//! loss): it may answer exactly what it answered before instead.

use std::net::{SocketAddr, ToSocketAddrs};

use reqwest::{Method, Response};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::TestResult;
use crate::helpers::{Account, Error, Fields, PASSWORD, TestApp, eventually, three_nodes};

/// A TCP proxy between the server and PostgreSQL. Cut, it closes the database's side of
/// every connection it forwards at once and the server's side the moment the server
/// next speaks on it — so the server's next query on a pooled connection meets a closed
/// connection, every time, as after a failover — and it holds new connections open and
/// unanswered, as a partitioned network would, until it is restored.
struct DatabaseProxy {
    up: watch::Sender<bool>,
}

impl DatabaseProxy {
    /// Forwards a free loopback port to `upstream`; the proxy and that port's address.
    fn start(upstream: SocketAddr) -> Result<(Self, SocketAddr), Error> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let address = listener.local_addr()?;
        let (up, state) = watch::channel(true);
        tokio::spawn(accept(listener, upstream, state));
        Ok((Self { up }, address))
    }

    /// The server's database URL: `database_url` with the proxy in between.
    fn route(database_url: &str) -> Result<(String, Self), Error> {
        let mut url = url::Url::parse(database_url)?;
        let upstream = (
            url.host_str().ok_or("the database URL names no host")?,
            url.port().unwrap_or(5432),
        )
            .to_socket_addrs()?
            .next()
            .ok_or("the database host does not resolve")?;
        let (proxy, address) = Self::start(upstream)?;
        url.set_host(Some(&address.ip().to_string()))?;
        url.set_port(Some(address.port()))
            .map_err(|()| "the database URL takes no port")?;
        Ok((url.into(), proxy))
    }

    fn cut(&self) {
        self.up.send_replace(false);
    }

    fn restore(&self) {
        self.up.send_replace(true);
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, state: watch::Receiver<bool>) {
    while let Ok((client, _)) = listener.accept().await {
        let state = state.clone();
        let up = *state.borrow();
        if up {
            tokio::spawn(forward(client, upstream, state));
        } else {
            tokio::spawn(hold(client, state));
        }
    }
}

/// Copies both ways until either side closes or the proxy is cut.
async fn forward(mut client: TcpStream, upstream: SocketAddr, mut state: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
        _ = state.wait_for(|up| !*up) => {}
    }
    drop(server);
    let mut first = [0_u8; 1];
    let _spoke = client.read(&mut first).await;
}

/// Keeps a connection made while cut open and silent until the proxy is restored.
async fn hold(client: TcpStream, mut state: watch::Receiver<bool>) {
    let _restored = state.wait_for(|up| *up).await;
    drop(client);
}

/// One request of every kind the outage is checked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    ListWorkflows,
    CreateWorkflow,
    Me,
    Login,
    Intake,
}

const PROBES: [Probe; 5] = [
    Probe::ListWorkflows,
    Probe::CreateWorkflow,
    Probe::Me,
    Probe::Login,
    Probe::Intake,
];

/// What the probes need: the app, a signed-in owner and an intake URL.
struct Target<'a> {
    app: &'a TestApp,
    owner: &'a Account,
    email: &'a str,
    intake: &'a str,
}

impl Target<'_> {
    /// Sends `probe`; `round` keeps the bodies of repeated requests distinct (a
    /// workflow's name, a delivery's body).
    async fn send(&self, probe: Probe, round: usize) -> Result<Response, Error> {
        let (app, owner) = (self.app, self.owner);
        let workspace = Some(owner.workspace_id.as_str());
        Ok(match probe {
            Probe::ListWorkflows => {
                app.get_as(&owner.access_token, "/api/workflows", workspace)
                    .await?
            }
            Probe::CreateWorkflow => {
                app.send_as(
                    Method::POST,
                    &owner.access_token,
                    "/api/workflows",
                    workspace,
                    &json!({"name": format!("Outage {round}"), "definition": three_nodes()}),
                )
                .await?
            }
            Probe::Me => {
                app.get_as(&owner.access_token, "/api/auth/me", None)
                    .await?
            }
            Probe::Login => app.login(self.email, PASSWORD).await?,
            Probe::Intake => {
                app.client
                    .post(self.intake)
                    .header("content-type", "application/json")
                    .body(json!({"order": round}).to_string())
                    .send()
                    .await?
            }
        })
    }
}

/// Why `response` is not a `503 storage_unavailable` problem with `Retry-After`, if it
/// is not.
async fn not_unavailable(response: Response) -> Result<Option<String>, Error> {
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type");
    let retry_after = header("retry-after");
    let body = response.text().await?;
    let code = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|problem| problem["code"].as_str().map(str::to_owned));
    let fits = status == 503
        && content_type.as_deref() == Some("application/problem+json")
        && code.as_deref() == Some("storage_unavailable")
        && retry_after
            .as_deref()
            .is_some_and(|seconds| seconds.parse::<u64>().is_ok());
    Ok((!fits).then(|| {
        format!("{status}, content-type {content_type:?}, Retry-After {retry_after:?}: {body}")
    }))
}

/// Sends `probe` until it succeeds; every failed answer on the way must be a 503
/// `storage_unavailable` (a pooled connection that died with the database fails the
/// one request that meets it).
async fn succeeds_again(target: &Target<'_>, probe: Probe, round: usize) -> TestResult {
    for _ in 0..10 {
        let response = target.send(probe, round).await?;
        if response.status().is_success() {
            return Ok(());
        }
        if let Some(wrong) = not_unavailable(response).await? {
            return Err(format!("{probe:?} after the restore: {wrong}").into());
        }
    }
    Err(format!("{probe:?} never succeeded again").into())
}

async fn readiness(app: &TestApp) -> Result<u16, Error> {
    Ok(app.get("/readyz").await?.status().as_u16())
}

#[tokio::test]
async fn a_lost_database_is_a_503_on_every_route_and_the_server_recovers() -> TestResult {
    let (app, proxy) = TestApp::spawn_routed(
        &[("DATABASE_ACQUIRE_TIMEOUT_SECONDS", "1")],
        DatabaseProxy::route,
    )
    .await?;
    let email = "outage@example.com";
    let owner = app.signed_up(email).await?;
    let (status, registration) = app
        .post_in(
            &owner,
            "/api/webhooks",
            &json!({"name": "Orders", "provider": "none"}),
        )
        .await?;
    assert_eq!(status, 201, "{registration}");
    let intake = registration.text("url")?;
    let target = Target {
        app: &app,
        owner: &owner,
        email,
        intake: &intake,
    };
    let mut me_before = String::new();
    for probe in PROBES {
        let response = target.send(probe, 0).await?;
        assert!(
            response.status().is_success(),
            "{probe:?} before the outage: {}",
            response.status()
        );
        if probe == Probe::Me {
            me_before = response.text().await?;
        }
    }
    assert_eq!(readiness(&app).await?, 200);

    proxy.cut();
    let mut wrong = Vec::new();
    // Twice: first on pooled connections the cut closed, then on new ones that hang.
    for round in 1..=2 {
        for probe in PROBES {
            let response = target.send(probe, round).await?;
            if probe == Probe::Me && response.status() == 200 {
                let body = response.text().await?;
                if body != me_before {
                    wrong.push(format!("{probe:?} (round {round}): 200 changed: {body}"));
                }
                continue;
            }
            if let Some(answer) = not_unavailable(response).await? {
                wrong.push(format!("{probe:?} (round {round}): {answer}"));
            }
        }
    }
    assert!(wrong.is_empty(), "during the outage:\n{}", wrong.join("\n"));
    assert_eq!(readiness(&app).await?, 503);

    proxy.restore();
    let within = std::time::Duration::from_secs(30);
    eventually("/readyz answering 200 again", within, || async {
        Ok(readiness(&app).await? == 200)
    })
    .await?;
    for probe in PROBES {
        succeeds_again(&target, probe, 3).await?;
    }
    Ok(())
}
