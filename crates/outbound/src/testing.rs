//! Test support (feature `test-support`): moto's server standing in for AWS Secrets
//! Manager, and a small signed client that puts secrets into it through the Secrets
//! Manager API itself.
//!
//! moto (`moto[server]` from PyPI) is installed by `cargo xtask moto` (and `.ci/run`)
//! into `.fluxolab/moto`; `MOTO_SERVER` names another `moto_server`. Without one a test
//! is skipped with a printed reason, unless `CI` is set: then it fails.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::secret_stores::{SigningKey, sign_request};

/// What test support fails with.
pub type TestError = Box<dyn std::error::Error + Send + Sync>;

/// How long moto may take to start (it imports every AWS service it fakes).
const STARTUP: Duration = Duration::from_secs(60);

/// Whether this is a CI run, where a missing test server is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// A `moto_server` process on a free loopback port, killed when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    /// The `moto_server` to run: `MOTO_SERVER`, else the one `cargo xtask moto`
    /// installs under the workspace's `.fluxolab/moto`.
    pub fn executable() -> Option<PathBuf> {
        if let Some(given) = std::env::var_os("MOTO_SERVER").filter(|value| !value.is_empty()) {
            return Some(PathBuf::from(given));
        }
        let installed =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.fluxolab/moto/bin/moto_server");
        installed.exists().then_some(installed)
    }

    /// Starts moto accepting any credentials, or `Ok(None)` (with the reason printed)
    /// when it is not installed outside CI.
    pub async fn start() -> Result<Option<Self>, TestError> {
        Self::start_with(&[]).await
    }

    /// Starts moto verifying signatures and IAM permissions after its first
    /// `setup_actions` requests, which may create the IAM user whose key is then the
    /// only one accepted (see [`AwsApi::create_iam_key`]).
    pub async fn start_enforcing_auth(setup_actions: u32) -> Result<Option<Self>, TestError> {
        let count = setup_actions.to_string();
        Self::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", &count)]).await
    }

    async fn start_with(env: &[(&str, &str)]) -> Result<Option<Self>, TestError> {
        let Some(executable) = Self::executable() else {
            let why = "moto is not installed: run `cargo xtask moto` or set MOTO_SERVER";
            if in_ci() {
                return Err(why.into());
            }
            eprintln!("skipped: {why}");
            return Ok(None);
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new(&executable)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("could not start {}: {error}", executable.display()))?;
        let started = tokio::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(format!("moto_server exited at start: {status}").into());
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            if started.elapsed() > STARTUP {
                return Err(format!("moto_server did not listen within {STARTUP:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Some(Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A client for this server in `region` with the given key.
    pub fn api(&self, region: &str, access_key_id: &str, secret_access_key: &str) -> AwsApi {
        AwsApi {
            endpoint: self.endpoint.clone(),
            region: region.to_owned(),
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Signed calls to an AWS-compatible endpoint, for setting up tests.
#[derive(Debug)]
pub struct AwsApi {
    endpoint: String,
    region: String,
    access_key_id: String,
    secret_access_key: String,
    client: reqwest::Client,
}

impl AwsApi {
    async fn post(
        &self,
        service: &str,
        region: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Result<String, TestError> {
        let key = SigningKey {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            session_token: None,
        };
        let url = format!("{}/", self.endpoint);
        let signed = sign_request(
            "POST",
            &url,
            headers,
            body.as_bytes(),
            key,
            region,
            service,
            SystemTime::now(),
        )?;
        let mut request = self.client.post(&url).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            return Err(format!("{service}: HTTP {status}: {text}").into());
        }
        Ok(text)
    }

    /// A Secrets Manager action (JSON protocol).
    pub async fn secrets_manager(&self, action: &str, input: &Value) -> Result<Value, TestError> {
        let target = format!("secretsmanager.{action}");
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let text = self
            .post("secretsmanager", &self.region, &headers, input.to_string())
            .await?;
        Ok(serde_json::from_str(&text)?)
    }

    /// `CreateSecret` with a string value.
    pub async fn create_secret(&self, name: &str, value: &str) -> Result<(), TestError> {
        let input = serde_json::json!({ "Name": name, "SecretString": value });
        self.secrets_manager("CreateSecret", &input).await.map(drop)
    }

    /// `PutSecretValue`: a new current version (a rotation).
    pub async fn put_secret_value(&self, name: &str, value: &str) -> Result<(), TestError> {
        let input = serde_json::json!({ "SecretId": name, "SecretString": value });
        self.secrets_manager("PutSecretValue", &input)
            .await
            .map(drop)
    }

    /// An IAM user allowed everything, and its access key `(id, secret)`: three IAM
    /// actions (`CreateUser`, `PutUserPolicy`, `CreateAccessKey`).
    pub async fn create_iam_key(&self, user: &str) -> Result<(String, String), TestError> {
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        self.iam(&[("Action", "CreateUser"), ("UserName", user)])
            .await?;
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", user),
            ("PolicyName", "everything"),
            ("PolicyDocument", policy),
        ])
        .await?;
        let created = self
            .iam(&[("Action", "CreateAccessKey"), ("UserName", user)])
            .await?;
        let element = |tag: &str| -> Result<String, TestError> {
            let (_, rest) = created
                .split_once(&format!("<{tag}>"))
                .ok_or_else(|| format!("CreateAccessKey answered no {tag}: {created}"))?;
            let (value, _) = rest
                .split_once(&format!("</{tag}>"))
                .ok_or_else(|| format!("CreateAccessKey: unterminated {tag}"))?;
            Ok(value.to_owned())
        };
        Ok((element("AccessKeyId")?, element("SecretAccessKey")?))
    }

    /// An IAM action (query protocol, signed for `us-east-1` as IAM is global).
    async fn iam(&self, params: &[(&str, &str)]) -> Result<String, TestError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().copied())
            .append_pair("Version", "2010-05-08")
            .finish();
        let headers = [(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )];
        self.post("iam", "us-east-1", &headers, body).await
    }
}
