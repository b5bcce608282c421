//! The OpenID Connect relying party (`openidconnect`, a certified-flow library): discovery
//! with its issuer and PKCE checks, the authorization URL, the code exchange and the
//! ID token's verification. Every request goes through the SSRF guard, with our reqwest
//! client (no redirects), as the library's HTTP client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fluxolab_kernel::ExposeSecret;
use fluxolab_workspace::sso::ports::{
    AuthorizationRequest, CodeExchange, OidcClient, OidcFailure, ProviderClient, ProviderInfo,
    VerifiedIdentity,
};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, DiscoveryError, HttpRequest, HttpResponse, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, ProviderMetadata, RedirectUrl, RequestTokenError, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::guard::{GuardedResolver, allowed_addresses};

/// How long one request to a provider may take.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from a provider.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What discovery reads beyond the core metadata: the PKCE methods.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct PkceMetadata {
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
}

impl AdditionalProviderMetadata for PkceMetadata {}

type Metadata = ProviderMetadata<
    PkceMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// A request to a provider that got no usable answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderHttpError(String);

/// The HTTP client could not be built (no TLS backend).
#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client for identity providers")]
pub struct OidcSetupError(#[source] reqwest::Error);

/// The production [`OidcClient`]: one HTTP client per network policy.
#[derive(Clone)]
pub struct OpenIdConnect {
    guarded: reqwest::Client,
    internal: reqwest::Client,
}

impl std::fmt::Debug for OpenIdConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenIdConnect").finish_non_exhaustive()
    }
}

fn http_client(allow_internal: bool) -> Result<reqwest::Client, OidcSetupError> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_internal }))
        // A redirect could lead the client secret or the code elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROVIDER_TIMEOUT)
        .connect_timeout(PROVIDER_TIMEOUT)
        .build()
        .map_err(OidcSetupError)
}

type Answer = Pin<Box<dyn Future<Output = Result<HttpResponse, ProviderHttpError>> + Send>>;

/// Sends one of the library's requests once the guard allows its host (IP literals
/// never reach the guarded resolver, so they are checked here).
async fn send(
    client: reqwest::Client,
    allow_internal: bool,
    request: HttpRequest,
) -> Result<HttpResponse, ProviderHttpError> {
    let failed = |what: String| ProviderHttpError(what);
    let url = url::Url::parse(&request.uri().to_string())
        .map_err(|error| failed(format!("invalid URL: {error}")))?;
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(443);
    allowed_addresses(host, port, allow_internal)
        .await
        .map_err(|error| failed(format!("refused: {error}")))?;
    let origin = url.origin().ascii_serialization();
    let (parts, body) = request.into_parts();
    let mut response = client
        .request(parts.method, url)
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|error| failed(format!("{origin}: {}", error.without_url())))?;
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    if let Some(headers) = builder.headers_mut() {
        headers.extend(response.headers().clone());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| failed(format!("{origin}: {}", error.without_url())))?
    {
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(failed(format!(
                "{origin}: the answer is larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    builder
        .body(bytes)
        .map_err(|error| failed(format!("{origin}: {error}")))
}

fn discovery_failure(error: DiscoveryError<ProviderHttpError>) -> OidcFailure {
    match error {
        DiscoveryError::Request(error) => OidcFailure::Unreachable(error.to_string()),
        DiscoveryError::Parse(error) => {
            OidcFailure::BadProvider(format!("the discovery document is not valid: {error}"))
        }
        DiscoveryError::Validation(why) => OidcFailure::BadProvider(format!(
            "the discovery document does not match the issuer: {why}"
        )),
        other => OidcFailure::BadProvider(other.to_string()),
    }
}

/// The claim `name` of a (verified) compact JWT's payload, as a list of strings.
fn string_list_claim(jwt: &str, name: &str) -> Vec<String> {
    let payload = jwt
        .split('.')
        .nth(1)
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    match payload.as_ref().and_then(|claims| claims.get(name)) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

impl OpenIdConnect {
    pub fn new() -> Result<Self, OidcSetupError> {
        Ok(Self {
            guarded: http_client(false)?,
            internal: http_client(true)?,
        })
    }

    /// The library's HTTP client for a workspace's network policy.
    fn http(&self, allow_internal: bool) -> impl Fn(HttpRequest) -> Answer + use<> {
        let client = if allow_internal {
            self.internal.clone()
        } else {
            self.guarded.clone()
        };
        move |request| Box::pin(send(client.clone(), allow_internal, request))
    }

    async fn metadata(&self, issuer: &str, allow_internal: bool) -> Result<Metadata, OidcFailure> {
        let issuer = IssuerUrl::new(issuer.to_owned())
            .map_err(|error| OidcFailure::BadProvider(format!("not a URL: {error}")))?;
        let metadata = Metadata::discover_async(issuer, &self.http(allow_internal))
            .await
            .map_err(discovery_failure)?;
        let methods = &metadata
            .additional_metadata()
            .code_challenge_methods_supported;
        if !methods.iter().any(|method| method == "S256") {
            return Err(OidcFailure::BadProvider(
                "the provider does not support PKCE with S256 (code_challenge_methods_supported)"
                    .into(),
            ));
        }
        if metadata.jwks().keys().is_empty() {
            return Err(OidcFailure::BadProvider(
                "the provider's JWKS holds no key".into(),
            ));
        }
        Ok(metadata)
    }

    async fn client(
        &self,
        provider: &ProviderClient,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcFailure,
    > {
        let metadata = self
            .metadata(&provider.issuer, provider.allow_internal)
            .await?;
        let redirect = RedirectUrl::new(provider.redirect_uri.clone())
            .map_err(|error| OidcFailure::BadProvider(format!("redirect URI: {error}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.client_id.clone()),
            Some(ClientSecret::new(
                provider.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(redirect))
    }
}

#[async_trait]
impl OidcClient for OpenIdConnect {
    #[tracing::instrument(name = "oidc.discover", skip_all)]
    async fn discover<'a>(
        &self,
        issuer: &'a str,
        allow_internal: bool,
    ) -> Result<ProviderInfo, OidcFailure> {
        let metadata = self.metadata(issuer, allow_internal).await?;
        let signing_algorithms = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter_map(|alg| serde_json::to_value(alg).ok())
            .filter_map(|alg| alg.as_str().map(str::to_owned))
            .collect();
        Ok(ProviderInfo {
            authorization_endpoint: metadata.authorization_endpoint().to_string(),
            signing_algorithms,
            keys: metadata.jwks().keys().len(),
        })
    }

    #[tracing::instrument(name = "oidc.authorization_url", skip_all)]
    async fn authorization_url<'a>(
        &self,
        provider: &'a ProviderClient,
        request: &'a AuthorizationRequest<'a>,
    ) -> Result<String, OidcFailure> {
        let client = self.client(provider).await?;
        let verifier = PkceCodeVerifier::new(request.code_verifier.expose_secret().to_owned());
        let (state, nonce) = (request.state.to_owned(), request.nonce.to_owned());
        // `openid` is always sent; the others as configured.
        let scopes = request
            .scopes
            .iter()
            .filter(|scope| *scope != "openid")
            .map(|scope| Scope::new(scope.clone()));
        let (url, _, _) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scopes(scopes)
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(&verifier))
            .url();
        Ok(url.to_string())
    }

    #[tracing::instrument(name = "oidc.exchange", skip_all)]
    async fn exchange<'a>(
        &self,
        provider: &'a ProviderClient,
        exchange: &'a CodeExchange<'a>,
    ) -> Result<VerifiedIdentity, OidcFailure> {
        let client = self.client(provider).await?;
        let http = self.http(provider.allow_internal);
        let tokens = client
            .exchange_code(AuthorizationCode::new(exchange.code.to_owned()))
            .map_err(|error| OidcFailure::BadProvider(error.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(
                exchange.code_verifier.expose_secret().to_owned(),
            ))
            .request_async(&http)
            .await
            .map_err(|error| match error {
                RequestTokenError::Request(error) => OidcFailure::Unreachable(error.to_string()),
                RequestTokenError::ServerResponse(answer) => OidcFailure::Rejected(format!(
                    "the provider refused the code: {}",
                    answer.error()
                )),
                other => OidcFailure::Rejected(format!("the token answer is unusable: {other}")),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| OidcFailure::Rejected("the provider returned no ID token".into()))?;
        // Signature against the JWKS, `iss`, `aud`, `exp`, the nonce, and only the
        // algorithms the provider advertised.
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &Nonce::new(exchange.nonce.to_owned()))
            .map_err(|error| match error {
                ClaimsVerificationError::InvalidNonce(_) => OidcFailure::NonceMismatch,
                other => OidcFailure::Rejected(other.to_string()),
            })?;
        Ok(VerifiedIdentity {
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|email| email.as_str().to_owned()),
            email_verified: claims.email_verified() == Some(true),
            name: claims
                .name()
                .and_then(|name| name.get(None))
                .map(|name| name.as_str().to_owned()),
            groups: string_list_claim(&id_token.to_string(), exchange.groups_claim),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &Value) -> String {
        format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default())
        )
    }

    #[test]
    fn groups_are_read_as_a_list_or_a_single_name() {
        let token = jwt(&serde_json::json!({"groups": ["eng", 3, "ops"], "team": "sales"}));
        assert_eq!(string_list_claim(&token, "groups"), ["eng", "ops"]);
        assert_eq!(string_list_claim(&token, "team"), ["sales"]);
        assert!(string_list_claim(&token, "roles").is_empty());
        assert!(string_list_claim("not-a-jwt", "groups").is_empty());
    }
}
