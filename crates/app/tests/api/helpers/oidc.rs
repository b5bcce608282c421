//! A real OpenID provider for the SSO tests — `oidc-provider` from npm, started by
//! `crates/app/tests/oidc_provider.mjs` on a free loopback port — and a scripted browser
//! that signs in through its login and consent forms.
//!
//! The package is installed by `.ci/run` (`npm ci` of
//! `crates/app/tests/oidc_provider/package.json` into `.fluxolab/oidc-provider`);
//! `OIDC_PROVIDER_DIR` names another directory holding `node_modules/oidc-provider`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::Error;

/// How long the provider may take to answer.
const STARTUP: Duration = Duration::from_secs(30);

/// The client FluxoLab is registered as.
pub const CLIENT_ID: &str = "fluxolab-test";
pub const CLIENT_SECRET: &str = "oidc-client-s3cr3t-value";

/// A running provider, killed when dropped.
#[derive(Debug)]
pub struct OidcProvider {
    pub issuer: String,
    _process: Child,
}

/// The directory holding `node_modules/oidc-provider`, if it is installed.
fn installed() -> Option<PathBuf> {
    let dir = std::env::var_os("OIDC_PROVIDER_DIR")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.fluxolab/oidc-provider")
        });
    dir.join("node_modules/oidc-provider/package.json")
        .exists()
        .then_some(dir)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

impl OidcProvider {
    /// Starts the provider with one client redirecting to `redirect_uri` and `accounts`
    /// (`{id: {email, email_verified, name, groups}}`); `Ok(None)` (with the reason
    /// printed) when it is not installed outside CI.
    pub async fn start(redirect_uri: &str, accounts: &Value) -> Result<Option<Self>, Error> {
        let Some(dir) = installed() else {
            let why = "oidc-provider is not installed: run .ci/run (npm ci into .fluxolab/oidc-provider) or set OIDC_PROVIDER_DIR";
            assert!(!in_ci(), "{why}");
            eprintln!("skipped: {why}");
            return Ok(None);
        };
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc_provider.mjs");
        let mut process = Command::new("node")
            .arg(script)
            .arg(dir)
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URI", redirect_uri)
            .env("OIDC_ACCOUNTS", accounts.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = process.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(STARTUP, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(port) = line.strip_prefix("listening ") {
                    return Ok::<_, Error>(port.trim().parse::<u16>()?);
                }
            }
            Err("oidc-provider exited before listening".into())
        })
        .await
        .map_err(|_| "oidc-provider did not listen in time")??;
        // What it prints later (its notices) is read and dropped: a closed pipe kills it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Some(Self {
            issuer: format!("http://127.0.0.1:{port}"),
            _process: process,
        }))
    }
}

/// A browser without JavaScript: follows redirects itself, keeps cookies by name, and
/// fills the provider's development login and consent forms.
#[derive(Debug)]
pub struct Browser {
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

/// The value of `name="…"`-style attribute `attribute` in `tag`.
fn attribute(tag: &str, attribute: &str) -> Option<String> {
    let start = tag.find(&format!("{attribute}=\""))? + attribute.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].replace("&amp;", "&"))
}

impl Browser {
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            cookies: BTreeMap::new(),
        })
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for header in response.headers().get_all(SET_COOKIE) {
            let Some((pair, _)) = header
                .to_str()
                .ok()
                .map(|text| text.split_once(';').unwrap_or((text, "")))
            else {
                continue;
            };
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies
                    .insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Error> {
        let response = request.header(COOKIE, self.cookie_header()).send().await?;
        self.keep_cookies(&response);
        Ok(response)
    }

    /// Goes to `start` and through the provider as `login`, until a redirect to a URL
    /// under `stop_at` (FluxoLab's callback), which it returns without following.
    pub async fn sign_in(&mut self, start: &str, login: &str, stop_at: &str) -> Result<Url, Error> {
        let mut response = self.send(self.client.get(start)).await?;
        for _ in 0..20 {
            let here = response.url().clone();
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .ok_or("a redirect without Location")?;
                let next = here.join(location)?;
                if next.as_str().starts_with(stop_at) {
                    return Ok(next);
                }
                response = self.send(self.client.get(next)).await?;
                continue;
            }
            let status = response.status();
            let page = response.text().await?;
            let form = page
                .split("<form")
                .nth(1)
                .ok_or_else(|| format!("{status} at {here} without a form: {page}"))?;
            let action = attribute(form, "action").ok_or("a form without action")?;
            let mut fields = Url::parse("http://form.invalid/")?;
            {
                let mut pairs = fields.query_pairs_mut();
                for input in form.split("<input").skip(1) {
                    if input.contains("type=\"hidden\"")
                        && let (Some(name), Some(value)) =
                            (attribute(input, "name"), attribute(input, "value"))
                    {
                        pairs.append_pair(&name, &value);
                    }
                }
                if form.contains("name=\"login\"") {
                    pairs.append_pair("login", login);
                    pairs.append_pair("password", "any password");
                }
            }
            let body = fields.query().unwrap_or_default().to_owned();
            let target = here.join(&action)?;
            response = self
                .send(
                    self.client
                        .post(target)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body),
                )
                .await?;
        }
        Err("too many steps at the provider".into())
    }
}
