//! AWS Secrets Manager over its JSON protocol (`X-Amz-Target: secretsmanager.<Action>`),
//! signed with SigV4 by `aws-sigv4` (the SDK's signer, without the SDK).

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine;
use fluxolab_kernel::{ExposeSecret, SecretString, StoreConnection, StoreFailure, StoreKind};
use serde_json::{Value, json};

use super::{Probed, Reply, SecretStores, parse_endpoint, quote, send};

const SERVICE: &str = "secretsmanager";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Error types that mean the credentials (or the signature made with them) were refused.
const AUTH_ERRORS: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "InvalidClientTokenId",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "ExpiredTokenException",
    "AccessDeniedException",
];

/// The key a request is signed with.
#[derive(Clone, Copy)]
pub(crate) struct SigningKey<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// The headers SigV4 adds to a request (`x-amz-date`, `authorization`, and
/// `x-amz-security-token` with temporary credentials). `headers` are signed as given;
/// `host` comes from `url`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sign_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    key: SigningKey<'_>,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, StoreFailure> {
    let unsignable = |error: &dyn std::fmt::Display| {
        StoreFailure::Failed(format!("could not sign the request: {error}"))
    };
    let identity = aws_credential_types::Credentials::new(
        key.access_key_id,
        key.secret_access_key,
        key.session_token.map(str::to_owned),
        None,
        "fluxolab-secret-provider",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|error| unsignable(&error))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|error| unsignable(&error))?;
    // aws-sigv4 traces its parameters, access key id included: AWS does not count the
    // id as a secret, we do not show it either. Signing is synchronous, so muting this
    // thread's subscriber for the call mutes nothing else.
    let signed =
        tracing::dispatcher::with_default(&tracing::Dispatch::none(), || sign(signable, &params));
    let (instructions, _signature) = signed.map_err(|error| unsignable(&error))?.into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

/// One provider's endpoint and key.
struct Aws<'a> {
    region: &'a str,
    endpoint: url::Url,
    key: SigningKey<'a>,
    secret_access_key: &'a SecretString,
    session_token: Option<&'a SecretString>,
}

impl<'a> Aws<'a> {
    fn of(connection: &'a StoreConnection) -> Result<Self, StoreFailure> {
        let StoreKind::AwsSecretsManager {
            region,
            endpoint_url,
            access_key_id,
            secret_access_key,
            session_token,
        } = &connection.kind
        else {
            return Err(StoreFailure::Failed("not an AWS provider".to_owned()));
        };
        let region = region.trim();
        let valid_region = !region.is_empty()
            && region.len() <= 32
            && region
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        if !valid_region {
            return Err(StoreFailure::Failed(format!(
                "`{region}` is not an AWS region"
            )));
        }
        let endpoint = match endpoint_url.as_deref().map(str::trim) {
            Some(given) if !given.is_empty() => parse_endpoint("endpoint_url", given)?,
            _ => parse_endpoint(
                "endpoint",
                &format!("https://{SERVICE}.{region}.amazonaws.com"),
            )?,
        };
        Ok(Self {
            region,
            endpoint,
            key: SigningKey {
                access_key_id,
                secret_access_key: secret_access_key.expose_secret(),
                session_token: session_token.as_ref().map(|token| token.expose_secret()),
            },
            secret_access_key,
            session_token: session_token.as_ref(),
        })
    }

    /// Calls `action` with `input`; `secret` names the secret it is about, for failures.
    async fn call(
        &self,
        stores: &SecretStores,
        connection: &StoreConnection,
        action: &str,
        input: &Value,
        secret: Option<&str>,
    ) -> Result<Value, StoreFailure> {
        let body = input.to_string().into_bytes();
        let target = format!("{SERVICE}.{action}");
        let headers = [("content-type", CONTENT_TYPE), ("x-amz-target", &target)];
        let signed = sign_request(
            "POST",
            self.endpoint.as_str(),
            &headers,
            &body,
            self.key,
            self.region,
            SERVICE,
            SystemTime::from(stores.clock.now()),
        )?;
        let mut request = stores.client(connection).post(self.endpoint.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let reply = send(
            &self.endpoint,
            connection.allow_internal_network,
            request.body(body),
        )
        .await?;
        if !reply.status.is_success() {
            return Err(self.failure(&reply, secret));
        }
        serde_json::from_slice(&reply.body).map_err(|_| {
            StoreFailure::Failed(format!("HTTP {}: the answer is not JSON", reply.status))
        })
    }

    /// What an error answer means, with the status and AWS's error type.
    fn failure(&self, reply: &Reply, secret: Option<&str>) -> StoreFailure {
        let (kind, message) = error_of(reply);
        let label = format!(
            "HTTP {} {}",
            reply.status.as_u16(),
            kind.as_deref().unwrap_or("(no error type)")
        );
        let status = reply.status.as_u16();
        match kind.as_deref() {
            Some("ResourceNotFoundException") => StoreFailure::NotFound(match secret {
                Some(name) => format!("secret `{name}` ({label})"),
                None => label,
            }),
            // An auth error's message may repeat the signed request, session token
            // included: only its type is kept.
            Some(kind) if AUTH_ERRORS.contains(&kind) => StoreFailure::Unauthenticated(label),
            _ if status == 401 || status == 403 => StoreFailure::Unauthenticated(label),
            _ => match message {
                Some(message) => {
                    let mut credentials = vec![self.secret_access_key];
                    credentials.extend(self.session_token);
                    let quoted = quote(&message, &credentials, &[self.key.access_key_id]);
                    StoreFailure::Failed(format!("{label}: {quoted}"))
                }
                None => StoreFailure::Failed(label),
            },
        }
    }
}

/// AWS's error type and message: from `x-amzn-ErrorType`, a JSON body (`__type`,
/// `message`) or, as some AWS-compatible services answer auth errors, an XML one.
fn error_of(reply: &Reply) -> (Option<String>, Option<String>) {
    let header = reply
        .headers
        .get("x-amzn-errortype")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(':').next())
        .filter(|kind| !kind.is_empty())
        .map(str::to_owned);
    let text = String::from_utf8_lossy(&reply.body);
    if let Ok(Value::Object(body)) = serde_json::from_str::<Value>(&text) {
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| body.get(*name).and_then(Value::as_str))
                .map(str::to_owned)
        };
        let kind = field(&["__type", "code", "Code"])
            .map(|kind| kind.rsplit('#').next().unwrap_or_default().to_owned());
        return (header.or(kind), field(&["message", "Message"]));
    }
    let element = |tag: &str| {
        let (_, rest) = text.split_once(&format!("<{tag}>"))?;
        rest.split_once(&format!("</{tag}>"))
            .map(|(inner, _)| inner.trim().to_owned())
    };
    (header.or_else(|| element("Code")), element("Message"))
}

/// The value of a `GetSecretValue` answer: `SecretString`, else `SecretBinary` when its
/// bytes are UTF-8 text.
fn value_of(mut answer: Value, name: &str) -> Result<SecretString, StoreFailure> {
    if let Some(Value::String(text)) = answer.get_mut("SecretString").map(Value::take) {
        return Ok(SecretString::from(text));
    }
    if let Some(Value::String(encoded)) = answer.get("SecretBinary") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| {
                StoreFailure::Failed(format!("secret `{name}`: SecretBinary is not base64"))
            })?;
        return String::from_utf8(bytes)
            .map(SecretString::from)
            .map_err(|_| {
                StoreFailure::Failed(format!("secret `{name}` is binary, not UTF-8 text"))
            });
    }
    Err(StoreFailure::Failed(format!(
        "secret `{name}` has neither SecretString nor SecretBinary"
    )))
}

/// `GetSecretValue` of `name` (its current version).
pub(super) async fn read(
    stores: &SecretStores,
    connection: &StoreConnection,
    name: &str,
) -> Result<SecretString, StoreFailure> {
    let aws = Aws::of(connection)?;
    let answer = aws
        .call(
            stores,
            connection,
            "GetSecretValue",
            &json!({ "SecretId": name }),
            Some(name),
        )
        .await?;
    value_of(answer, name)
}

/// `GetSecretValue` of the probe secret (its value dropped unread), or `ListSecrets`
/// of one name.
pub(super) async fn probe(
    stores: &SecretStores,
    connection: &StoreConnection,
    probe_name: Option<&str>,
) -> Result<String, Probed> {
    let aws = Aws::of(connection).map_err(Probed::Invalid)?;
    match probe_name {
        Some(name) => {
            let input = json!({ "SecretId": name });
            aws.call(stores, connection, "GetSecretValue", &input, Some(name))
                .await
                .map_err(Probed::Failed)?;
            Ok(format!("read secret `{name}` (value not shown)"))
        }
        None => {
            let answer = aws
                .call(
                    stores,
                    connection,
                    "ListSecrets",
                    &json!({ "MaxResults": 1 }),
                    None,
                )
                .await
                .map_err(Probed::Failed)?;
            let listed = answer["SecretList"].as_array().map_or(0, Vec::len);
            Ok(format!(
                "listed secrets in {} ({listed} name(s) in the first page)",
                aws.region
            ))
        }
    }
}

#[cfg(test)]
#[path = "aws_tests.rs"]
mod tests;
