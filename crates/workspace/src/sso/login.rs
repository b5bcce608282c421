//! Signing in through a workspace's OpenID provider: [`SsoService::start`] sends the
//! browser to the provider (state, nonce and PKCE verifier kept server-side, single
//! use, 10 minutes); [`SsoService::callback`] checks the answer, finds or provisions
//! the user and the membership, and hands out a one-use ticket (60 seconds) that
//! [`SsoService::redeem`] turns into the signed-in user. Tokens never travel in a URL.

use fluxolab_kernel::{
    Actor, AuditEvent, ExposeSecret, LimitedResource, NoRandomness, SecretString, StorageError,
    UserId, WorkspaceId,
};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::json;
use time::Duration;

use super::model::SsoConfig;
use super::ports::{
    AuthorizationRequest, CodeExchange, KnownUser, OidcFailure, PendingLogin, ProviderClient,
    Ticket, VerifiedIdentity,
};
use super::{SsoError, SsoService};

/// How long a started login may take at the provider.
pub const LOGIN_TTL: Duration = Duration::minutes(10);
/// How long a ticket may wait to be exchanged.
pub const TICKET_TTL: Duration = Duration::seconds(60);

/// Why a sign-in was refused; each is recorded as `sso.login_refused` with its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRefusal {
    /// The `state` is unknown, used already, or older than 10 minutes.
    BadState,
    /// The ID token's nonce is not the login's.
    BadNonce,
    /// The code exchange or the ID token was refused.
    TokenRejected(String),
    /// The provider could not be reached.
    ProviderUnavailable(String),
    /// No e-mail address, or one the provider has not verified.
    UnverifiedEmail,
    /// The e-mail domain is not among `allowed_domains`.
    Domain,
    /// Not a member, and the workspace does not provision members at sign-in.
    NoJit,
}

impl LoginRefusal {
    /// The reason's code, in the activity and the problem.
    pub fn code(&self) -> &'static str {
        match self {
            LoginRefusal::BadState => "bad_state",
            LoginRefusal::BadNonce => "bad_nonce",
            LoginRefusal::TokenRejected(_) => "token_rejected",
            LoginRefusal::ProviderUnavailable(_) => "provider_unavailable",
            LoginRefusal::UnverifiedEmail => "unverified_email",
            LoginRefusal::Domain => "domain_not_allowed",
            LoginRefusal::NoJit => "no_jit",
        }
    }
}

impl std::fmt::Display for LoginRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginRefusal::BadState => f.write_str("the login state is unknown, used or expired"),
            LoginRefusal::BadNonce => f.write_str("the ID token's nonce does not match"),
            LoginRefusal::TokenRejected(why) => write!(f, "the ID token was refused: {why}"),
            LoginRefusal::ProviderUnavailable(why) => {
                write!(f, "the identity provider is unavailable: {why}")
            }
            LoginRefusal::UnverifiedEmail => {
                f.write_str("the identity provider did not verify the e-mail address")
            }
            LoginRefusal::Domain => f.write_str("the e-mail domain may not sign in here"),
            LoginRefusal::NoJit => f.write_str(
                "the user is not a member and the workspace does not provision members at sign-in",
            ),
        }
    }
}

/// Why a login step failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No enabled SSO for this workspace.
    #[error("this workspace has no single sign-on")]
    NotConfigured,
    #[error("sign-in refused: {0}")]
    Refused(LoginRefusal),
    /// The ticket is unknown, used or expired.
    #[error("the ticket is unknown, used or expired")]
    TicketInvalid,
    #[error(transparent)]
    Sso(#[from] SsoError),
}

impl From<StorageError> for LoginError {
    fn from(error: StorageError) -> Self {
        LoginError::Sso(error.into())
    }
}

impl From<NoRandomness> for LoginError {
    fn from(error: NoRandomness) -> Self {
        LoginError::Sso(error.into())
    }
}

/// 256 random bits as hex.
fn random_token() -> Result<String, NoRandomness> {
    let mut bytes = [0_u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| NoRandomness)?;
    Ok(hex::encode(bytes))
}

/// The stored digest of a state or ticket.
pub fn digest_of(token: &str) -> [u8; 32] {
    let mut out = [0_u8; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

/// A ticket's user and workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedIn {
    pub user: UserId,
    pub workspace: WorkspaceId,
}

impl SsoService {
    async fn provider_client(
        &self,
        config: &SsoConfig,
        redirect_uri: &str,
    ) -> Result<ProviderClient, StorageError> {
        Ok(ProviderClient {
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            client_secret: self
                .ports
                .secrets
                .open(config.workspace_id, config.client_secret)
                .await?,
            redirect_uri: redirect_uri.to_owned(),
            allow_internal: self.allow_internal(config.workspace_id).await?,
        })
    }

    /// The provider's authorization URL for a new login into the workspace `slug`;
    /// `redirect_uri` is FluxoLab's callback.
    #[tracing::instrument(name = "sso.start", skip_all)]
    pub async fn start(&self, slug: &str, redirect_uri: &str) -> Result<String, LoginError> {
        let config = self
            .ports
            .configs
            .find_by_slug(slug)
            .await?
            .filter(|config| config.enabled)
            .ok_or(LoginError::NotConfigured)?;
        self.require_plan(config.workspace_id).await?;
        let (state, nonce) = (random_token()?, random_token()?);
        let code_verifier = SecretString::from(random_token()?);
        let client = self.provider_client(&config, redirect_uri).await?;
        let url = self
            .ports
            .client
            .authorization_url(
                &client,
                &AuthorizationRequest {
                    scopes: &config.scopes,
                    state: &state,
                    nonce: &nonce,
                    code_verifier: &code_verifier,
                },
            )
            .await
            .map_err(|failure| {
                LoginError::Refused(LoginRefusal::ProviderUnavailable(failure.to_string()))
            })?;
        self.ports
            .logins
            .insert_pending(&PendingLogin {
                state_hash: digest_of(&state),
                workspace_id: config.workspace_id,
                nonce,
                code_verifier,
                expires_at: self.ports.clock.now() + LOGIN_TTL,
            })
            .await?;
        Ok(url)
    }

    /// Records a refused sign-in (when its workspace is known) and returns the refusal.
    async fn refuse(
        &self,
        workspace: Option<WorkspaceId>,
        refusal: LoginRefusal,
        email: Option<&str>,
    ) -> LoginError {
        tracing::info!(reason = refusal.code(), "SSO sign-in refused");
        if let Some(workspace) = workspace {
            let event = AuditEvent {
                workspace_id: workspace,
                actor: None,
                action: "sso.login_refused",
                target: None,
                metadata: json!({"reason": refusal.code(), "detail": refusal.to_string(), "email": email}),
            };
            if let Err(error) = self.ports.audit.record(&event).await {
                return LoginError::from(error);
            }
        }
        LoginError::Refused(refusal)
    }

    /// Checks the provider's answer (`code`, `state`), finds or provisions the user and
    /// the membership, and returns a one-use ticket for [`SsoService::redeem`].
    #[tracing::instrument(name = "sso.callback", skip_all)]
    pub async fn callback(
        &self,
        code: &str,
        state: &str,
        redirect_uri: &str,
    ) -> Result<SecretString, LoginError> {
        let now = self.ports.clock.now();
        let Some(taken) = self.ports.logins.take_pending(digest_of(state)).await? else {
            return Err(self.refuse(None, LoginRefusal::BadState, None).await);
        };
        let pending = taken.login;
        let workspace = pending.workspace_id;
        if taken.replayed || pending.expires_at <= now {
            return Err(self
                .refuse(Some(workspace), LoginRefusal::BadState, None)
                .await);
        }
        let config = self
            .ports
            .configs
            .find(workspace)
            .await?
            .filter(|config| config.enabled)
            .ok_or(LoginError::NotConfigured)?;
        let client = self.provider_client(&config, redirect_uri).await?;
        let exchange = CodeExchange {
            code,
            code_verifier: &pending.code_verifier,
            nonce: &pending.nonce,
            groups_claim: &config.groups_claim,
        };
        let identity = match self.ports.client.exchange(&client, &exchange).await {
            Ok(identity) => identity,
            Err(failure) => {
                let refusal = match failure {
                    OidcFailure::NonceMismatch => LoginRefusal::BadNonce,
                    OidcFailure::Unreachable(why) => LoginRefusal::ProviderUnavailable(why),
                    OidcFailure::BadProvider(why) | OidcFailure::Rejected(why) => {
                        LoginRefusal::TokenRejected(why)
                    }
                };
                return Err(self.refuse(Some(workspace), refusal, None).await);
            }
        };
        let email = match (&identity.email, identity.email_verified) {
            (Some(email), true) if fluxolab_kernel::plausible_email(email) => email.clone(),
            (email, _) => {
                return Err(self
                    .refuse(
                        Some(workspace),
                        LoginRefusal::UnverifiedEmail,
                        email.as_deref(),
                    )
                    .await);
            }
        };
        if !config.admits_domain(&email) {
            return Err(self
                .refuse(Some(workspace), LoginRefusal::Domain, Some(&email))
                .await);
        }
        let known = self.ports.directory.find_user(workspace, &email).await?;
        if !config.jit_provisioning && !matches!(known, Some(KnownUser { role: Some(_), .. })) {
            return Err(self
                .refuse(Some(workspace), LoginRefusal::NoJit, Some(&email))
                .await);
        }
        self.sign_in(&config, &identity, &email, known).await
    }

    /// Provisions what is missing, stores the ticket and records `sso.login`, in one
    /// transaction.
    async fn sign_in(
        &self,
        config: &SsoConfig,
        identity: &VerifiedIdentity,
        email: &str,
        known: Option<KnownUser>,
    ) -> Result<SecretString, LoginError> {
        let workspace = config.workspace_id;
        let role = config.role_for(&identity.groups);
        let ticket = random_token()?;
        let mut unit = self.ports.units.begin().await?;
        let (user, created_user, added_member) = match known {
            Some(KnownUser { id, role: Some(_) }) => (id, false, false),
            found => {
                let user = found.map_or_else(UserId::new, |known| known.id);
                if let Some(reached) = self
                    .ports
                    .plans
                    .admit(unit.as_mut(), workspace, LimitedResource::Members)
                    .await?
                {
                    return Err(SsoError::PlanLimit(reached).into());
                }
                if found.is_none() {
                    let name = identity
                        .name
                        .as_deref()
                        .filter(|name| !name.trim().is_empty())
                        .unwrap_or(email);
                    self.ports
                        .directory
                        .create_user(unit.as_mut(), user, email, name, workspace)
                        .await?;
                }
                self.ports
                    .directory
                    .add_member(unit.as_mut(), workspace, user, role)
                    .await?;
                (user, found.is_none(), true)
            }
        };
        self.ports
            .logins
            .insert_ticket(
                unit.as_mut(),
                &Ticket {
                    ticket_hash: digest_of(&ticket),
                    workspace_id: workspace,
                    user_id: user,
                    expires_at: self.ports.clock.now() + TICKET_TTL,
                },
            )
            .await?;
        let mut metadata = json!({
            "email": email,
            "subject": identity.subject,
            "user_created": created_user,
            "member_added": added_member,
        });
        if added_member {
            metadata["role"] = json!(role.code());
        }
        let event = AuditEvent {
            workspace_id: workspace,
            actor: Some(Actor::User(user)),
            action: "sso.login",
            target: Some(("user", user.to_string())),
            metadata,
        };
        self.ports.audit.record_in(unit.as_mut(), &event).await?;
        unit.commit().await?;
        Ok(SecretString::from(ticket))
    }

    /// The user and workspace of a ticket, once: unknown, used and expired tickets are
    /// refused alike.
    #[tracing::instrument(name = "sso.redeem", skip_all)]
    pub async fn redeem(&self, ticket: &SecretString) -> Result<SignedIn, LoginError> {
        let now = self.ports.clock.now();
        self.ports
            .logins
            .take_ticket(digest_of(ticket.expose_secret()))
            .await?
            .filter(|ticket| ticket.expires_at > now)
            .map(|ticket| SignedIn {
                user: ticket.user_id,
                workspace: ticket.workspace_id,
            })
            .ok_or(LoginError::TicketInvalid)
    }
}
