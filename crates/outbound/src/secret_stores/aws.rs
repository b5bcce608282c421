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
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::HeaderMap;

    /// The credentials of AWS's published SigV4 test suite.
    const SUITE_KEY: SigningKey<'static> = SigningKey {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };

    fn suite_time() -> SystemTime {
        // 2015-08-30T12:36:00Z
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160)
    }

    fn authorization(headers: &[(String, String)]) -> Option<&str> {
        headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .map(|(_, value)| value.as_str())
    }

    #[test]
    fn signing_matches_the_published_sigv4_vectors() -> Result<(), StoreFailure> {
        // aws-sig-v4-test-suite `get-vanilla` and `post-vanilla`.
        let url = "https://example.amazonaws.com/";
        let get = sign_request(
            "GET",
            url,
            &[],
            b"",
            SUITE_KEY,
            "us-east-1",
            "service",
            suite_time(),
        )?;
        assert_eq!(
            authorization(&get),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
        assert!(get.contains(&("x-amz-date".to_owned(), "20150830T123600Z".to_owned())));
        let post = sign_request(
            "POST",
            url,
            &[],
            b"",
            SUITE_KEY,
            "us-east-1",
            "service",
            suite_time(),
        )?;
        assert!(
            authorization(&post).is_some_and(|value| value.ends_with(
                "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
            )),
            "{post:?}"
        );
        Ok(())
    }

    #[test]
    fn a_session_token_is_sent_and_signed() -> Result<(), StoreFailure> {
        let key = SigningKey {
            session_token: Some("FwoGZXIvYXdzEXAMPLE"),
            ..SUITE_KEY
        };
        let url = "https://secretsmanager.eu-west-1.amazonaws.com/";
        let signed = sign_request(
            "POST",
            url,
            &[],
            b"{}",
            key,
            "eu-west-1",
            SERVICE,
            suite_time(),
        )?;
        assert!(signed.contains(&(
            "x-amz-security-token".to_owned(),
            "FwoGZXIvYXdzEXAMPLE".to_owned()
        )));
        assert!(
            authorization(&signed).is_some_and(
                |value| value.contains("SignedHeaders=host;x-amz-date;x-amz-security-token")
            ),
            "{signed:?}"
        );
        Ok(())
    }

    #[test]
    fn the_endpoint_is_the_regional_one_unless_one_is_given() -> Result<(), StoreFailure> {
        let mut connection = StoreConnection {
            provider_id: uuid::Uuid::nil(),
            revision: 1,
            kind: StoreKind::AwsSecretsManager {
                region: "eu-central-2".to_owned(),
                endpoint_url: None,
                access_key_id: "AKIDEXAMPLE".to_owned(),
                secret_access_key: SecretString::from("s3cr3t".to_owned()),
                session_token: None,
            },
            allow_internal_network: false,
        };
        let regional = Aws::of(&connection)?.endpoint;
        assert_eq!(
            regional.as_str(),
            "https://secretsmanager.eu-central-2.amazonaws.com/"
        );
        if let StoreKind::AwsSecretsManager { endpoint_url, .. } = &mut connection.kind {
            *endpoint_url = Some("http://127.0.0.1:4566".to_owned());
        }
        assert_eq!(
            Aws::of(&connection)?.endpoint.as_str(),
            "http://127.0.0.1:4566/"
        );
        Ok(())
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn error_types_come_from_json_or_xml_bodies() {
        let json = reply(
            400,
            r#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"gone"}"#,
        );
        assert_eq!(
            error_of(&json),
            (
                Some("ResourceNotFoundException".to_owned()),
                Some("gone".to_owned())
            )
        );
        let xml = reply(
            403,
            "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error></ErrorResponse>",
        );
        assert_eq!(
            error_of(&xml),
            (
                Some("SignatureDoesNotMatch".to_owned()),
                Some("no".to_owned())
            )
        );
    }

    #[test]
    fn binary_secrets_are_text_when_they_are_utf8() {
        let text = value_of(json!({ "SecretBinary": "aMOpbGxv" }), "bin").expect("utf-8");
        assert_eq!(text.expose_secret(), "héllo");
        let failure = value_of(json!({ "SecretBinary": "/w==" }), "bin").expect_err("not utf-8");
        assert!(failure.to_string().contains("bin"), "{failure}");
    }
}
