//! The account use cases: register, log in, refresh, log out, change the password.

use std::sync::Arc;

use fluxolab_kernel::{
    Clock, Conflict, ConflictCode, Failure, StorageError, Unauthenticated, UnitOfWorkFactory,
    UserId, ValidationErrors, WorkspaceId,
};
use secrecy::SecretString;
use time::Duration;

use crate::account::{
    ClientInfo, DisplayName, Membership, NewSession, NewUser, SecurityOverview, Session,
    SessionFamilyId, SessionId, SignInMethod, User, UserSettings,
};
use crate::password::{HashingFailed, check_policy};
use crate::ports::{
    InsertUserError, PasswordHasher, SessionRepository, UserProfiles, UserRepository,
    WorkspaceProvisioner,
};
use crate::session_token::{NoRandomness, RefreshToken, digest_of};
use crate::tokens::{TokenError, TokenIssuer};
use crate::{EmailAddress, PasswordHash};

/// Consecutive failed logins that lock an account.
pub const MAX_FAILED_LOGINS: u32 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT: Duration = Duration::minutes(15);

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the request has invalid fields: {0}")]
    Invalid(ValidationErrors),
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    /// Unknown e-mail, wrong password and locked account all answer this, alike.
    #[error("the e-mail address or password is wrong")]
    InvalidCredentials,
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("the account no longer exists")]
    UnknownUser,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Hashing(#[from] HashingFailed),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Randomness(#[from] NoRandomness),
}

impl From<AccountError> for Failure {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Invalid(errors) => Failure::Invalid(errors),
            AccountError::EmailTaken => Failure::Conflict(Conflict::new(
                ConflictCode::EmailTaken,
                "an account with this e-mail address already exists",
            )),
            AccountError::InvalidCredentials => {
                Failure::Unauthenticated(Unauthenticated::InvalidCredentials)
            }
            AccountError::InvalidRefreshToken => {
                Failure::Unauthenticated(Unauthenticated::InvalidRefreshToken)
            }
            AccountError::WrongPassword => {
                Failure::Invalid(ValidationErrors::single("current_password", "is wrong"))
            }
            AccountError::UnknownUser => Failure::Unauthenticated(Unauthenticated::TokenRequired),
            AccountError::Storage(error) => error.into(),
            AccountError::Randomness(error) => error.into(),
            AccountError::Hashing(error) => Failure::Internal(Box::new(error)),
            AccountError::Token(error) => Failure::Internal(Box::new(error)),
        }
    }
}

/// What registering takes.
#[derive(Debug)]
pub struct Registration {
    pub email: String,
    pub password: SecretString,
    pub display_name: String,
}

/// Tokens handed to a client after login or refresh.
#[derive(Debug)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: SecretString,
    pub expires_in: i64,
}

/// Everything the account use cases need.
pub struct AccountPorts {
    pub units: Arc<dyn UnitOfWorkFactory>,
    pub users: Arc<dyn UserRepository>,
    /// The users as `me` shows them.
    pub profiles: Arc<dyn UserProfiles>,
    pub sessions: Arc<dyn SessionRepository>,
    pub provisioner: Arc<dyn WorkspaceProvisioner>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub tokens: Arc<TokenIssuer>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AccountPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountPorts").finish_non_exhaustive()
    }
}

/// The account use cases.
pub struct AccountService {
    ports: AccountPorts,
    /// Verified against when the e-mail is unknown, so that answer takes as long.
    decoy_hash: PasswordHash,
}

impl std::fmt::Debug for AccountService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountService").finish_non_exhaustive()
    }
}

impl AccountService {
    /// `decoy_hash` is any argon2id hash with the production parameters.
    pub fn new(ports: AccountPorts, decoy_hash: PasswordHash) -> Self {
        Self { ports, decoy_hash }
    }

    pub fn tokens(&self) -> &TokenIssuer {
        &self.ports.tokens
    }

    /// Creates the user and, in the same unit of work, their personal workspace; either
    /// everything is written or nothing is.
    #[tracing::instrument(name = "accounts.register", skip_all)]
    pub async fn register(&self, registration: Registration) -> Result<User, AccountError> {
        let mut errors = ValidationErrors::new();
        let email = EmailAddress::parse(&registration.email)
            .map_err(|error| errors.add("email", error.to_string()))
            .ok();
        let display_name = DisplayName::parse(&registration.display_name)
            .map_err(|message| errors.add("display_name", message))
            .ok();
        if let Err(error) = check_policy(&registration.password, &registration.email) {
            errors.add("password", error.to_string());
        }
        let (Some(email), Some(display_name)) = (email, display_name) else {
            return Err(AccountError::Invalid(errors));
        };
        if !errors.is_empty() {
            return Err(AccountError::Invalid(errors));
        }

        let password_hash = self.ports.hasher.hash(registration.password).await?;
        let user = NewUser {
            id: UserId::new(),
            email,
            display_name,
            password_hash,
        };
        let mut unit = self.ports.units.begin().await?;
        self.ports
            .users
            .insert(unit.as_mut(), &user)
            .await
            .map_err(|error| match error {
                InsertUserError::EmailTaken => AccountError::EmailTaken,
                InsertUserError::Storage(error) => AccountError::Storage(error),
            })?;
        // The personal workspace becomes the default: the workspace domain's rule.
        self.ports
            .provisioner
            .provision_personal(unit.as_mut(), user.id, user.display_name.as_str())
            .await?;
        unit.commit().await?;
        self.ports
            .users
            .find(user.id)
            .await?
            .ok_or(AccountError::UnknownUser)
    }

    /// Checks the password and opens a session. Unknown e-mail, wrong password and a
    /// locked account answer alike, after a password verification each.
    #[tracing::instrument(name = "accounts.login", skip_all)]
    pub async fn login(
        &self,
        email: &str,
        password: SecretString,
        client: ClientInfo,
    ) -> Result<TokenPair, AccountError> {
        let record = match EmailAddress::parse(email) {
            Ok(email) => self.ports.users.find_for_login(&email).await?,
            Err(_) => None,
        };
        let now = self.ports.clock.now();
        let Some(record) = record else {
            self.ports
                .hasher
                .verify(self.decoy_hash.clone(), password)
                .await;
            return Err(AccountError::InvalidCredentials);
        };
        if record.locked_until.is_some_and(|until| until > now) {
            self.ports
                .hasher
                .verify(self.decoy_hash.clone(), password)
                .await;
            return Err(AccountError::InvalidCredentials);
        }
        if !self
            .ports
            .hasher
            .verify(record.password_hash, password)
            .await
        {
            self.ports
                .users
                .record_failed_login(record.user_id, now, MAX_FAILED_LOGINS, LOCKOUT)
                .await?;
            return Err(AccountError::InvalidCredentials);
        }
        self.ports
            .users
            .record_successful_login(record.user_id, now)
            .await?;
        self.open_session(
            record.user_id,
            record.default_workspace_id,
            SignInMethod::Password,
            client,
        )
        .await
    }

    /// Rotates a refresh token. A token that was already rotated means it was stolen or
    /// replayed: its whole family is revoked.
    #[tracing::instrument(name = "accounts.refresh", skip_all)]
    pub async fn refresh(
        &self,
        token: &str,
        client: ClientInfo,
    ) -> Result<TokenPair, AccountError> {
        let now = self.ports.clock.now();
        let session = self
            .ports
            .sessions
            .find_by_digest(&digest_of(token))
            .await?
            .ok_or(AccountError::InvalidRefreshToken)?;
        if session.revoked_at.is_some() || session.expires_at <= now {
            return Err(AccountError::InvalidRefreshToken);
        }
        if session.rotated_at.is_some() {
            self.revoke_family_for_reuse(&session).await?;
            return Err(AccountError::InvalidRefreshToken);
        }
        let refresh = RefreshToken::generate()?;
        let next = self.new_session(
            &session.user_id,
            (session.workspace_id, session.family_id, session.method),
            &refresh,
            client,
        );
        if !self.ports.sessions.rotate(session.id, &next, now).await? {
            self.revoke_family_for_reuse(&session).await?;
            return Err(AccountError::InvalidRefreshToken);
        }
        self.token_pair(
            session.user_id,
            (session.workspace_id, session.family_id, session.method),
            refresh,
        )
    }

    /// Ends the session the refresh token belongs to (its whole family). Unknown tokens
    /// are ignored: logging out twice is not an error.
    #[tracing::instrument(name = "accounts.logout", skip_all)]
    pub async fn logout(&self, token: &str) -> Result<(), AccountError> {
        if let Some(session) = self
            .ports
            .sessions
            .find_by_digest(&digest_of(token))
            .await?
        {
            self.ports
                .sessions
                .revoke_family(session.family_id, self.ports.clock.now(), "logout")
                .await?;
        }
        Ok(())
    }

    /// The user with their memberships.
    #[tracing::instrument(name = "accounts.me", skip_all)]
    pub async fn me(&self, user: UserId) -> Result<(User, Vec<Membership>), AccountError> {
        self.ports
            .profiles
            .find_with_memberships(user)
            .await?
            .ok_or(AccountError::UnknownUser)
    }

    /// Changes the password after checking the current one, and revokes every session
    /// except the caller's (`keep_family`).
    #[tracing::instrument(name = "accounts.change_password", skip_all)]
    pub async fn change_password(
        &self,
        user: UserId,
        keep_family: SessionFamilyId,
        current: SecretString,
        new: SecretString,
    ) -> Result<(), AccountError> {
        let record = self
            .ports
            .users
            .find_for_login_by_id(user)
            .await?
            .ok_or(AccountError::UnknownUser)?;
        let email = self
            .ports
            .users
            .find(user)
            .await?
            .ok_or(AccountError::UnknownUser)?
            .email;
        if let Err(error) = check_policy(&new, &email) {
            return Err(AccountError::Invalid(ValidationErrors::single(
                "new_password",
                error.to_string(),
            )));
        }
        if !self
            .ports
            .hasher
            .verify(record.password_hash, current)
            .await
        {
            return Err(AccountError::WrongPassword);
        }
        let hash = self.ports.hasher.hash(new).await?;
        let now = self.ports.clock.now();
        let mut unit = self.ports.units.begin().await?;
        self.ports
            .users
            .set_password(unit.as_mut(), user, &hash, now)
            .await?;
        self.ports
            .sessions
            .revoke_all_but(unit.as_mut(), user, keep_family, now, "password changed")
            .await?;
        unit.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "accounts.settings", skip_all)]
    pub async fn settings(&self, user: UserId) -> Result<UserSettings, AccountError> {
        self.ports
            .users
            .settings(user)
            .await?
            .ok_or(AccountError::UnknownUser)
    }

    #[tracing::instrument(name = "accounts.update_settings", skip_all)]
    pub async fn update_settings(
        &self,
        user: UserId,
        settings: UserSettings,
    ) -> Result<UserSettings, AccountError> {
        settings.validate().map_err(AccountError::Invalid)?;
        self.ports.users.save_settings(user, &settings).await?;
        Ok(settings)
    }

    #[tracing::instrument(name = "accounts.security", skip_all)]
    pub async fn security(&self, user: UserId) -> Result<SecurityOverview, AccountError> {
        let password_changed_at = self
            .ports
            .users
            .password_changed_at(user)
            .await?
            .ok_or(AccountError::UnknownUser)?;
        let sessions = self
            .ports
            .sessions
            .list_live(user, self.ports.clock.now())
            .await?;
        Ok(SecurityOverview {
            password_changed_at,
            sessions,
        })
    }

    /// Revokes one of the user's sessions (its whole family); `false` when the user has
    /// no live session with that id.
    #[tracing::instrument(name = "accounts.revoke_session", skip_all)]
    pub async fn revoke_session(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<bool, AccountError> {
        let now = self.ports.clock.now();
        let live = self.ports.sessions.list_live(user, now).await?;
        let Some(found) = live.iter().find(|candidate| candidate.id == session) else {
            return Ok(false);
        };
        self.ports
            .sessions
            .revoke_family(found.family_id, now, "revoked by the user")
            .await?;
        Ok(true)
    }

    async fn revoke_family_for_reuse(&self, session: &Session) -> Result<(), AccountError> {
        self.ports
            .sessions
            .revoke_family(
                session.family_id,
                self.ports.clock.now(),
                "refresh token reused",
            )
            .await?;
        Ok(())
    }

    /// Opens a new session family for `user` (signed in by `method`), active in
    /// `workspace`.
    pub(crate) async fn open_session(
        &self,
        user: UserId,
        workspace: Option<WorkspaceId>,
        method: SignInMethod,
        client: ClientInfo,
    ) -> Result<TokenPair, AccountError> {
        let refresh = RefreshToken::generate()?;
        let family = SessionFamilyId::new();
        let session = self.new_session(&user, (workspace, family, method), &refresh, client);
        self.ports.sessions.create(&session).await?;
        self.token_pair(user, (workspace, family, method), refresh)
    }

    fn new_session(
        &self,
        user: &UserId,
        (workspace, family, method): (Option<WorkspaceId>, SessionFamilyId, SignInMethod),
        refresh: &RefreshToken,
        client: ClientInfo,
    ) -> NewSession {
        let now = self.ports.clock.now();
        NewSession {
            id: SessionId::new(),
            user_id: *user,
            family_id: family,
            token_digest: refresh.digest,
            workspace_id: workspace,
            user_agent: client.user_agent,
            created_at: now,
            expires_at: now + self.ports.tokens.settings().refresh_ttl,
            method,
        }
    }

    fn token_pair(
        &self,
        user: UserId,
        (workspace, family, method): (Option<WorkspaceId>, SessionFamilyId, SignInMethod),
        refresh: RefreshToken,
    ) -> Result<TokenPair, AccountError> {
        let access = self
            .ports
            .tokens
            .issue_for(user, workspace, family, method)?;
        Ok(TokenPair {
            access_token: access.token,
            refresh_token: refresh.secret,
            expires_in: access.expires_in,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use fluxolab_kernel::unit_of_work::{MockUnitOfWorkFactory, RecordingUnitOfWork};
    use fluxolab_kernel::{StorageError, SystemClock};

    use super::*;
    use crate::ports::{
        MockPasswordHasher, MockSessionRepository, MockUserProfiles, MockUserRepository,
        MockWorkspaceProvisioner,
    };
    use crate::tokens::TokenSettings;

    fn registration() -> Registration {
        Registration {
            email: "ada@example.com".into(),
            password: SecretString::from("correct horse battery".to_owned()),
            display_name: "Ada".into(),
        }
    }

    fn service(
        units: MockUnitOfWorkFactory,
        users: MockUserRepository,
        provisioner: MockWorkspaceProvisioner,
    ) -> AccountService {
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_hash()
            .returning(|_| Ok(PasswordHash::from_stored("$argon2id$stub".into())));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        AccountService::new(
            AccountPorts {
                units: Arc::new(units),
                users: Arc::new(users),
                profiles: Arc::new(MockUserProfiles::new()),
                sessions: Arc::new(MockSessionRepository::new()),
                provisioner: Arc::new(provisioner),
                hasher: Arc::new(hasher),
                tokens: Arc::new(TokenIssuer::new(
                    &[7; 32],
                    TokenSettings::default(),
                    clock.clone(),
                )),
                clock,
            },
            PasswordHash::from_stored("$argon2id$decoy".into()),
        )
    }

    #[tokio::test]
    async fn a_failing_provisioning_step_leaves_the_unit_uncommitted() {
        let unit = RecordingUnitOfWork::default();
        let committed = unit.committed.clone();
        let mut units = MockUnitOfWorkFactory::new();
        units
            .expect_begin()
            .times(1)
            .returning(move || Ok(Box::new(unit.clone())));
        let mut users = MockUserRepository::new();
        users.expect_insert().times(1).returning(|_, _| Ok(()));
        users.expect_find().never();
        let mut provisioner = MockWorkspaceProvisioner::new();
        provisioner
            .expect_provision_personal()
            .times(1)
            .returning(|_, _, _| Err(StorageError::new(std::io::Error::other("disk full"))));

        let result = service(units, users, provisioner)
            .register(registration())
            .await;
        assert!(
            matches!(result, Err(AccountError::Storage(_))),
            "{result:?}"
        );
        assert!(
            !committed.load(Ordering::SeqCst),
            "the unit must not be committed"
        );
    }

    #[tokio::test]
    async fn invalid_fields_are_all_reported_and_nothing_is_begun() {
        let mut units = MockUnitOfWorkFactory::new();
        units.expect_begin().never();
        let result = service(
            units,
            MockUserRepository::new(),
            MockWorkspaceProvisioner::new(),
        )
        .register(Registration {
            email: "not-an-email".into(),
            password: SecretString::from("short".to_owned()),
            display_name: " ".into(),
        })
        .await;
        let Err(AccountError::Invalid(errors)) = result else {
            panic!("expected validation errors, got {result:?}");
        };
        let fields: Vec<_> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "display_name", "password"]);
    }
}
