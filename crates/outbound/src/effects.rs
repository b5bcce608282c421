//! The side effects of workflow nodes: `http.request`, `email.send` and `flow.delay`,
//! with credentials resolved server-side and every connection behind the SSRF guard.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fluxolab_credentials::CredentialKind;
use fluxolab_credentials::ports::{CredentialResolver, NetworkPolicy};
use fluxolab_kernel::CredentialId;
use fluxolab_workflows::engine::{EMAIL_TIMEOUT, EffectContext, NodeEffects, NodeFailure};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Map, Value, json};

use crate::guard::{GuardedResolver, allowed_addresses};

/// The credential kinds an `http.request` node applies.
/// The header an `http.request` carries its step's idempotency key in.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

const HTTP_KINDS: &[CredentialKind] = &[
    CredentialKind::HttpBasic,
    CredentialKind::HttpHeader,
    CredentialKind::BearerToken,
];

/// The most response body an `http.request` node keeps.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// The longest `flow.delay`.
pub const MAX_DELAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The production [`NodeEffects`].
pub struct OutboundEffects {
    pub credentials: Arc<dyn CredentialResolver>,
    pub network: Arc<dyn NetworkPolicy>,
}

impl std::fmt::Debug for OutboundEffects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundEffects").finish_non_exhaustive()
    }
}

fn text_of(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

fn object(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

impl OutboundEffects {
    async fn allow_internal(&self, context: EffectContext) -> Result<bool, NodeFailure> {
        self.network
            .allows_internal(context.workspace_id)
            .await
            .map_err(|error| NodeFailure::transient(error.to_string()))
    }
}

#[async_trait]
impl NodeEffects for OutboundEffects {
    async fn http_request(
        &self,
        context: EffectContext,
        params: Value,
        credential: Option<CredentialId>,
    ) -> Result<Value, NodeFailure> {
        let allow_internal = self.allow_internal(context).await?;
        let mut url = url::Url::parse(&text_of(&params["url"]))
            .map_err(|error| NodeFailure::permanent(format!("params.url is not a URL: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(NodeFailure::permanent(
                "params.url must be http:// or https://",
            ));
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        allowed_addresses(
            &host,
            url.port_or_known_default().unwrap_or(80),
            allow_internal,
        )
        .await
        .map_err(|error| format!("refused: {error}"))?;
        let timeout = fluxolab_workflows::engine::http_timeout(&params);
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let internal_literal = attempt
                .url()
                .host_str()
                .and_then(|host| host.trim_matches(['[', ']']).parse().ok())
                .is_some_and(|ip| {
                    crate::address_policy::classify(ip) != crate::AddressClass::Public
                });
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if internal_literal && !allow_internal {
                attempt.error("redirected to an internal address")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_internal }))
            .redirect(redirects)
            .timeout(timeout)
            .build()
            .map_err(|error| error.to_string())?;
        let method = reqwest::Method::from_bytes(text_of(&params["method"]).as_bytes())
            .map_err(|error| error.to_string())?;
        let query = object(&params["query"]);
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &query {
                pairs.append_pair(name, &text_of(value));
            }
        }
        let mut request = client.request(method, url);
        let headers = object(&params["headers"]);
        // The same key on every attempt of this step, unless the node sets its own.
        if let Some(key) = context.idempotency_key
            && !headers
                .keys()
                .any(|name| name.eq_ignore_ascii_case(IDEMPOTENCY_KEY))
        {
            request = request.header(IDEMPOTENCY_KEY, key.to_string());
        }
        for (name, value) in headers {
            request = request.header(name.as_str(), text_of(&value));
        }
        if let Some(body) = params.get("body").filter(|body| !body.is_null()) {
            request = request.json(body);
        }
        if let Some(id) = credential {
            let resolved = self
                .credentials
                .resolve(
                    context.workspace_id,
                    id,
                    HTTP_KINDS,
                    Some(context.execution_id),
                )
                .await
                .map_err(|error| error.to_string())?;
            let field = |name: &str| resolved.field(name).unwrap_or_default();
            request = match resolved.kind {
                CredentialKind::HttpBasic => {
                    request.basic_auth(field("username"), Some(field("password")))
                }
                CredentialKind::HttpHeader => request.header(field("name"), field("value")),
                _ => request.bearer_auth(field("token")),
            };
        }
        let mut response = request.send().await.map_err(|error| {
            let mut message = format!("request failed: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            // A refused target stays refused; a network hiccup may pass.
            if message.contains("internal addresses") {
                NodeFailure::permanent(message)
            } else {
                NodeFailure::transient(message)
            }
        })?;
        let status = response.status().as_u16();
        let headers: Map<String, Value> = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    name.to_string(),
                    Value::String(value.to_str().ok()?.to_owned()),
                ))
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| NodeFailure::transient(error.to_string()))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(NodeFailure::permanent(format!(
                    "the response is larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let body = serde_json::from_slice::<Value>(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        Ok(json!({"status": status, "headers": headers, "body": body}))
    }

    async fn send_email(
        &self,
        context: EffectContext,
        params: Value,
        credential: CredentialId,
    ) -> Result<Value, NodeFailure> {
        let smtp = self
            .credentials
            .resolve(
                context.workspace_id,
                credential,
                &[CredentialKind::Smtp],
                Some(context.execution_id),
            )
            .await
            .map_err(|error| error.to_string())?;
        let host = smtp.field("host").unwrap_or_default();
        let port = smtp
            .public
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|port| u16::try_from(port).ok())
            .unwrap_or(25);
        let address = allowed_addresses(&host, port, self.allow_internal(context).await?)
            .await
            .map_err(|error| NodeFailure::permanent(format!("refused: {error}")))?
            .into_iter()
            .next()
            .ok_or_else(|| NodeFailure::transient(format!("{host} has no address")))?;
        let username = smtp.field("username").filter(|name| !name.is_empty());
        let from = params["from"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| username.clone())
            .ok_or_else(|| {
                "params.from is required when the credential has no username".to_owned()
            })?;
        let parse = |field: &str, text: &str| {
            text.parse::<Mailbox>()
                .map_err(|error| format!("params.{field}: {error}"))
        };
        let from = parse("from", &from)?;
        // A stable Message-ID: every attempt of this step sends the same one.
        let message_id = context
            .idempotency_key
            .map(|key| format!("<{key}@{}>", from.email.domain()));
        let message = Message::builder()
            .message_id(message_id)
            .from(from)
            .to(parse("to", &text_of(&params["to"]))?)
            .subject(text_of(&params["subject"]))
            .body(text_of(&params["body"]))
            .map_err(|error| NodeFailure::permanent(error.to_string()))?;
        let tls = match smtp.field("tls_mode").as_deref() {
            Some("tls") => TlsParameters::new(host.clone()).map(Tls::Wrapper),
            Some("starttls") => TlsParameters::new(host.clone()).map(Tls::Required),
            _ => Ok(Tls::None),
        }
        .map_err(|error| NodeFailure::permanent(error.to_string()))?;
        let mut transport =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.ip().to_string())
                .port(address.port())
                .tls(tls)
                .timeout(Some(Duration::from_secs(30)));
        if let Some(username) = username {
            transport = transport.credentials(Credentials::new(
                username,
                smtp.field("password").unwrap_or_default(),
            ));
        }
        let mailer = transport.build::<Tokio1Executor>();
        let response = tokio::time::timeout(EMAIL_TIMEOUT, mailer.send(message))
            .await
            .map_err(|_| {
                NodeFailure::transient(format!(
                    "SMTP took longer than {} seconds",
                    EMAIL_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|error| {
                let message = format!("SMTP failed: {error}");
                if error.is_permanent() {
                    NodeFailure::permanent(message)
                } else {
                    NodeFailure::transient(message)
                }
            })?;
        Ok(json!({"accepted": response.is_positive(), "code": response.code().to_string()}))
    }

    async fn delay(&self, milliseconds: u64) {
        tokio::time::sleep(Duration::from_millis(milliseconds.min(MAX_DELAY_MS))).await;
    }
}
