//! A workspace's OpenID Connect configuration as stored, how a submitted one is checked,
//! and the rules a login follows (which plans have SSO, which domains may sign in,
//! which role a member gets).

use std::collections::BTreeMap;

use fluxolab_kernel::{
    CredentialId, PlanLimitReached, SecretString, ValidationErrors, WorkspaceId,
};
use time::OffsetDateTime;

use crate::{PlanCode, Role};

fluxolab_kernel::define_id!(
    /// A workspace's SSO configuration (its integration id).
    SsoConfigId
);

/// The scopes asked for when none are configured.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];
/// The claim read for group names when none is configured.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
/// The JSON Schema pattern of an issuer: an `http(s)` URL with no query, fragment or
/// user info (with `maxLength` [`MAX_ISSUER_CHARS`]).
pub const ISSUER_PATTERN: &str = r"^https?://[^\s/?#@\[\]]+(/[^\s?#]*)?$";
pub const MAX_ISSUER_CHARS: usize = 2048;
/// The pattern of a client id: printable ASCII, no spaces.
pub const CLIENT_ID_PATTERN: &str = r"^[\x21-\x7E]{1,255}$";
/// The pattern of one scope (RFC 6749 scope-token).
pub const SCOPE_PATTERN: &str = r"^[\x21\x23-\x5B\x5D-\x7E]{1,64}$";
pub const MAX_SCOPES: usize = 20;
/// The pattern of an allowed e-mail domain: lower-case labels, at least two.
pub const DOMAIN_PATTERN: &str =
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$";
pub const MAX_DOMAINS: usize = 50;
/// The pattern of the groups claim's name.
pub const GROUPS_CLAIM_PATTERN: &str = r"^[A-Za-z0-9_:./-]{1,64}$";
pub const MAX_ROLE_MAPPINGS: usize = 100;
pub const MAX_GROUP_CHARS: usize = 256;
pub const MAX_CLIENT_SECRET_CHARS: usize = 1024;
/// The roles SSO may grant: never `owner`.
pub const GRANTABLE_ROLES: [Role; 3] = [Role::Admin, Role::Editor, Role::Viewer];

/// Whether `plan` includes single sign-on.
pub const fn plan_has_sso(plan: PlanCode) -> bool {
    matches!(plan, PlanCode::Business | PlanCode::Enterprise)
}

/// The refusal a plan without SSO answers (`plan_limit`, limit `sso`, allowing none).
pub fn sso_not_in_plan() -> PlanLimitReached {
    PlanLimitReached {
        name: "sso",
        value: 0,
        current: 0,
    }
}

/// A workspace's OpenID Connect provider and login rules. The client secret is a vault
/// entry, never held here in clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoConfig {
    pub id: SsoConfigId,
    pub workspace_id: WorkspaceId,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: CredentialId,
    pub scopes: Vec<String>,
    /// Lower-case e-mail domains that may sign in; empty: any.
    pub allowed_domains: Vec<String>,
    pub groups_claim: String,
    /// Group name → role granted to a member provisioned at sign-in.
    pub role_mapping: BTreeMap<String, Role>,
    pub default_role: Role,
    /// Whether a sign-in creates the user and the membership when missing.
    pub jit_provisioning: bool,
    /// Whether password tokens are refused in the workspace (owners excepted).
    pub enforce_sso: bool,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl SsoConfig {
    /// The role a new member with `groups` gets: the strongest mapped one, else the
    /// default.
    pub fn role_for(&self, groups: &[String]) -> Role {
        groups
            .iter()
            .filter_map(|group| self.role_mapping.get(group))
            .copied()
            .min_by_key(|role| Role::ALL.iter().position(|known| known == role))
            .unwrap_or(self.default_role)
    }

    /// Whether `email`'s domain may sign in.
    pub fn admits_domain(&self, email: &str) -> bool {
        let domain = email
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_ascii_lowercase());
        self.allowed_domains.is_empty()
            || domain.is_some_and(|domain| self.allowed_domains.contains(&domain))
    }
}

/// A configuration as submitted to `PUT /api/settings/sso/configure`; left-out fields
/// take their defaults, a left-out secret keeps the sealed one.
#[derive(Debug, Default)]
pub struct SsoSubmission {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub scopes: Option<Vec<String>>,
    pub allowed_domains: Option<Vec<String>>,
    pub groups_claim: Option<String>,
    pub role_mapping: Option<BTreeMap<String, String>>,
    pub default_role: Option<String>,
    pub jit_provisioning: Option<bool>,
    pub enforce_sso: Option<bool>,
    pub enabled: Option<bool>,
}

/// A submission whose fields passed their checks (the issuer not yet discovered).
#[derive(Debug)]
pub struct CheckedSubmission {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub scopes: Vec<String>,
    pub allowed_domains: Vec<String>,
    pub groups_claim: String,
    pub role_mapping: BTreeMap<String, Role>,
    pub default_role: Role,
    pub jit_provisioning: bool,
    pub enforce_sso: bool,
    pub enabled: bool,
}

/// Whether `issuer` matches [`ISSUER_PATTERN`] (and its length).
pub fn valid_issuer(issuer: &str) -> bool {
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"));
    let Some(rest) = rest else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    !authority.is_empty()
        && !authority.contains(['?', '#', '@', '[', ']'])
        && !rest.contains(['?', '#'])
        && !issuer.contains(char::is_whitespace)
        && issuer.chars().count() <= MAX_ISSUER_CHARS
}

fn printable(value: &str, range: std::ops::RangeInclusive<usize>, extra: &[char]) -> bool {
    range.contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && !extra.contains(&c))
}

fn valid_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Whether `domain` matches [`DOMAIN_PATTERN`].
pub fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2 && labels.iter().all(|label| valid_label(label))
}

fn grantable_role(code: &str) -> Option<Role> {
    GRANTABLE_ROLES.into_iter().find(|role| role.code() == code)
}

fn check_scopes(scopes: Option<Vec<String>>, errors: &mut ValidationErrors) -> Vec<String> {
    let scopes = scopes.unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|&s| s.to_owned()).collect());
    if scopes.is_empty() || scopes.len() > MAX_SCOPES {
        errors.add("scopes", format!("must list 1 to {MAX_SCOPES} scopes"));
    }
    for (index, scope) in scopes.iter().enumerate() {
        if !printable(scope, 1..=64, &['"', '\\']) {
            errors.add(
                format!("scopes[{index}]"),
                "must be 1 to 64 printable ASCII characters, no `\"` or `\\`",
            );
        }
    }
    if !scopes.iter().any(|scope| scope == "openid") {
        errors.add("scopes", "must include `openid`");
    }
    scopes
}

fn check_domains(domains: Option<Vec<String>>, errors: &mut ValidationErrors) -> Vec<String> {
    let domains = domains.unwrap_or_default();
    if domains.len() > MAX_DOMAINS {
        errors.add(
            "allowed_domains",
            format!("must list at most {MAX_DOMAINS} domains"),
        );
    }
    for (index, domain) in domains.iter().enumerate() {
        if !valid_domain(domain) {
            errors.add(
                format!("allowed_domains[{index}]"),
                "must be a lower-case domain name such as `example.com`",
            );
        }
    }
    domains
}

fn check_mapping(
    mapping: Option<BTreeMap<String, String>>,
    errors: &mut ValidationErrors,
) -> BTreeMap<String, Role> {
    let mapping = mapping.unwrap_or_default();
    if mapping.len() > MAX_ROLE_MAPPINGS {
        errors.add(
            "role_mapping",
            format!("must map at most {MAX_ROLE_MAPPINGS} groups"),
        );
    }
    let mut roles = BTreeMap::new();
    for (group, role) in mapping {
        if !(1..=MAX_GROUP_CHARS).contains(&group.chars().count()) {
            errors.add(
                "role_mapping",
                format!("group names must be 1 to {MAX_GROUP_CHARS} characters"),
            );
        }
        match grantable_role(&role) {
            Some(granted) => {
                roles.insert(group, granted);
            }
            None => errors.add(
                format!("role_mapping.{group}"),
                "must be `viewer`, `editor` or `admin`",
            ),
        }
    }
    roles
}

/// Checks every field of `submission` (all problems at once). `has_secret`: whether a
/// client secret is already sealed, so the submission may leave it out.
pub fn check(
    submission: SsoSubmission,
    has_secret: bool,
) -> Result<CheckedSubmission, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if !valid_issuer(&submission.issuer) {
        errors.add(
            "issuer",
            "must be an http(s) URL without query, fragment or user info, at most 2048 characters",
        );
    }
    if !printable(&submission.client_id, 1..=255, &[]) {
        errors.add("client_id", "must be 1 to 255 printable ASCII characters");
    }
    match &submission.client_secret {
        Some(secret) => {
            let length = fluxolab_kernel::ExposeSecret::expose_secret(secret)
                .chars()
                .count();
            if !(1..=MAX_CLIENT_SECRET_CHARS).contains(&length) {
                errors.add(
                    "client_secret",
                    format!("must be 1 to {MAX_CLIENT_SECRET_CHARS} characters"),
                );
            }
        }
        None if !has_secret => errors.add("client_secret", "is required"),
        None => {}
    }
    let scopes = check_scopes(submission.scopes, &mut errors);
    let allowed_domains = check_domains(submission.allowed_domains, &mut errors);
    let groups_claim = submission
        .groups_claim
        .unwrap_or_else(|| DEFAULT_GROUPS_CLAIM.to_owned());
    if !(1..=64).contains(&groups_claim.len())
        || !groups_claim
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_:./-".contains(c))
    {
        errors.add("groups_claim", "must be 1 to 64 of A-Z, a-z, 0-9, `_:./-`");
    }
    let role_mapping = check_mapping(submission.role_mapping, &mut errors);
    let default_role = match submission.default_role.as_deref() {
        None => Some(Role::Viewer),
        Some(code) => grantable_role(code),
    };
    if default_role.is_none() {
        errors.add("default_role", "must be `viewer`, `editor` or `admin`");
    }
    let (Some(default_role), true) = (default_role, errors.is_empty()) else {
        return Err(errors);
    };
    Ok(CheckedSubmission {
        issuer: submission.issuer,
        client_id: submission.client_id,
        client_secret: submission.client_secret,
        scopes,
        allowed_domains,
        groups_claim,
        role_mapping,
        default_role,
        jit_provisioning: submission.jit_provisioning.unwrap_or(false),
        enforce_sso: submission.enforce_sso.unwrap_or(false),
        enabled: submission.enabled.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission() -> SsoSubmission {
        SsoSubmission {
            issuer: "https://id.example.com".into(),
            client_id: "fluxolab".into(),
            client_secret: Some(SecretString::from("s3cret".to_owned())),
            ..SsoSubmission::default()
        }
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.errors().iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn defaults_fill_what_is_left_out() -> Result<(), ValidationErrors> {
        let checked = check(submission(), false)?;
        assert_eq!(checked.scopes, ["openid", "email", "profile"]);
        assert_eq!(checked.groups_claim, "groups");
        assert_eq!(checked.default_role, Role::Viewer);
        assert!(checked.enabled && !checked.jit_provisioning && !checked.enforce_sso);
        Ok(())
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let bad = SsoSubmission {
            issuer: "ftp://id.example.com/?x".into(),
            client_id: "has space".into(),
            client_secret: None,
            scopes: Some(vec!["email".into()]),
            allowed_domains: Some(vec!["Example.COM".into(), "nodot".into()]),
            groups_claim: Some("bad claim".into()),
            role_mapping: Some(BTreeMap::from([("eng".into(), "owner".into())])),
            default_role: Some("owner".into()),
            ..SsoSubmission::default()
        };
        let Err(errors) = check(bad, false) else {
            panic!("accepted an invalid submission");
        };
        assert_eq!(
            fields(&errors),
            [
                "issuer",
                "client_id",
                "client_secret",
                "scopes",
                "allowed_domains[0]",
                "allowed_domains[1]",
                "groups_claim",
                "role_mapping.eng",
                "default_role"
            ]
        );
    }

    #[test]
    fn a_sealed_secret_may_be_kept() {
        let keep = SsoSubmission {
            client_secret: None,
            ..submission()
        };
        assert!(check(keep, true).is_ok());
    }

    #[test]
    fn issuers_follow_their_pattern() {
        for good in ["https://id.example.com", "http://127.0.0.1:4000/realms/x"] {
            assert!(valid_issuer(good), "{good}");
        }
        for bad in [
            "id.example.com",
            "https://",
            "https://a@b",
            "https://a/b?c",
            "https://a b",
        ] {
            assert!(!valid_issuer(bad), "{bad}");
        }
    }

    fn config(mapping: &[(&str, Role)], domains: &[&str]) -> SsoConfig {
        SsoConfig {
            id: SsoConfigId::new(),
            workspace_id: WorkspaceId::new(),
            issuer: "https://id.example.com".into(),
            client_id: "fluxolab".into(),
            client_secret: CredentialId::new(),
            scopes: vec!["openid".into()],
            allowed_domains: domains.iter().map(|&d| d.to_owned()).collect(),
            groups_claim: "groups".into(),
            role_mapping: mapping.iter().map(|(g, r)| ((*g).to_owned(), *r)).collect(),
            default_role: Role::Viewer,
            jit_provisioning: true,
            enforce_sso: false,
            enabled: true,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_strongest_mapped_role_wins_else_the_default() {
        let config = config(&[("eng", Role::Editor), ("ops", Role::Admin)], &[]);
        let groups = |names: &[&str]| names.iter().map(|&n| n.to_owned()).collect::<Vec<_>>();
        assert_eq!(config.role_for(&groups(&["eng", "ops"])), Role::Admin);
        assert_eq!(config.role_for(&groups(&["eng"])), Role::Editor);
        assert_eq!(config.role_for(&groups(&["sales"])), Role::Viewer);
    }

    #[test]
    fn only_allowed_domains_sign_in_when_some_are_listed() {
        let open = config(&[], &[]);
        assert!(open.admits_domain("anyone@anywhere.org"));
        let closed = config(&[], &["corp.test"]);
        assert!(closed.admits_domain("ada@CORP.test"));
        assert!(!closed.admits_domain("eve@evil.test"));
        assert!(!closed.admits_domain("eve@sub.corp.test"));
    }

    #[test]
    fn only_business_and_enterprise_have_sso() {
        let with: Vec<_> = PlanCode::ALL
            .into_iter()
            .filter(|p| plan_has_sso(*p))
            .collect();
        assert_eq!(with, [PlanCode::Business, PlanCode::Enterprise]);
    }
}
