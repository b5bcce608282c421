//! A workspace's LDAP configuration as submitted, checked and stored, and how a user's
//! groups map to a role.

use std::collections::BTreeMap;

use fluxolab_kernel::{CredentialId, SecretString, ValidationErrors, WorkspaceId};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::Role;

/// The default of [`LdapConfig::user_filter`]; `{username}` is replaced by the RFC 4515
/// escaped username.
pub const DEFAULT_USER_FILTER: &str = "(uid={username})";
/// The default of [`LdapConfig::group_filter`]; `{dn}` is replaced by the escaped DN of
/// the user (`{username}` may be used too).
pub const DEFAULT_GROUP_FILTER: &str = "(member={dn})";
/// The longest sync interval: a week.
pub const MAX_SYNC_INTERVAL_MINUTES: u32 = 10_080;
/// The most groups a role mapping may name.
pub const MAX_ROLE_MAPPINGS: usize = 100;
/// The roles LDAP may grant: never `owner`.
pub const MAPPABLE_ROLES: [Role; 3] = [Role::Admin, Role::Editor, Role::Viewer];

/// Where the directory is and how users and groups are found (no secret in it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapConfig {
    pub url: String,
    pub start_tls: bool,
    pub bind_dn: String,
    pub base_dn: String,
    pub user_filter: String,
    pub email_attribute: String,
    pub name_attribute: String,
    /// Where groups are searched; `None`: under `base_dn`.
    pub group_base_dn: Option<String>,
    pub group_filter: String,
    /// Group DN → role, for the groups that grant more than `default_role`.
    pub role_mapping: BTreeMap<String, Role>,
    pub default_role: Role,
    /// 0: no periodic sync.
    pub sync_interval_minutes: u32,
    pub enabled: bool,
}

impl LdapConfig {
    /// The role a member of `groups` gets: the most powerful role any of them maps to
    /// (DNs compared without regard to case), else `default_role`.
    pub fn role_for(&self, groups: &[String]) -> Role {
        let mapped = self.role_mapping.iter().filter(|(group, _)| {
            groups
                .iter()
                .any(|member_of| member_of.eq_ignore_ascii_case(group))
        });
        mapped
            .map(|(_, role)| *role)
            .chain([self.default_role])
            .min_by_key(|role| Role::ALL.iter().position(|known| known == role))
            .unwrap_or(self.default_role)
    }
}

/// What the latest sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncResult {
    /// Members brought in by LDAP that were looked up.
    pub checked: u32,
    pub role_changes: u32,
    pub removed: u32,
    /// What could not be done (a directory failure, a last owner kept…).
    pub errors: Vec<String>,
}

impl SyncResult {
    pub fn to_json(&self) -> Value {
        json!({
            "checked": self.checked,
            "role_changes": self.role_changes,
            "removed": self.removed,
            "errors": self.errors,
        })
    }

    /// Reads what [`SyncResult::to_json`] wrote (missing fields as zero).
    pub fn from_json(value: &Value) -> Self {
        let count = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0)
        };
        Self {
            checked: count("checked"),
            role_changes: count("role_changes"),
            removed: count("removed"),
            errors: value
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| {
                    errors
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A sync as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRecord {
    pub at: OffsetDateTime,
    pub result: SyncResult,
}

/// A workspace's LDAP settings as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapSettings {
    pub workspace_id: WorkspaceId,
    pub config: LdapConfig,
    /// The vault entry sealing the service account's password.
    pub bind_password: CredentialId,
    pub last_sync: Option<SyncRecord>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A member an LDAP login brought in (or linked), as the sync finds them again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapLink {
    pub workspace_id: WorkspaceId,
    pub user_id: fluxolab_kernel::UserId,
    pub username: String,
    pub dn: String,
    /// The role the user's groups mapped to at the latest login or sync.
    pub mapped_role: Role,
}

/// The settings as submitted by `PUT`: a whole configuration; left-out fields take
/// their defaults, a left-out `bind_password` keeps the sealed one.
#[derive(Clone, Debug)]
pub struct SubmittedLdap {
    pub url: String,
    pub start_tls: Option<bool>,
    pub bind_dn: String,
    pub bind_password: Option<SecretString>,
    pub base_dn: String,
    pub user_filter: Option<String>,
    pub email_attribute: Option<String>,
    pub name_attribute: Option<String>,
    pub group_base_dn: Option<String>,
    pub group_filter: Option<String>,
    pub role_mapping: Option<BTreeMap<String, String>>,
    pub default_role: Option<String>,
    pub sync_interval_minutes: Option<u32>,
    pub enabled: Option<bool>,
}

/// The longest DN, filter or URL accepted.
pub const MAX_TEXT: usize = 1024;
/// The longest bind password accepted.
pub const MAX_PASSWORD: usize = 1024;

fn valid_url(url: &str) -> bool {
    url.len() <= MAX_TEXT
        && (url.starts_with("ldap://") || url.starts_with("ldaps://"))
        && url::Url::parse(url).is_ok_and(|parsed| {
            parsed.host_str().is_some_and(|host| !host.is_empty())
                && matches!(parsed.path(), "" | "/")
                && parsed.query().is_none()
                && parsed.username().is_empty()
        })
}

/// A DN: 1–1024 characters with at least one `attribute=value`.
pub fn valid_dn(dn: &str) -> bool {
    (1..=MAX_TEXT).contains(&dn.chars().count()) && dn.contains('=') && dn.trim() == dn
}

/// A filter template: 1–1024 characters in balanced parentheses, with `placeholder`s.
fn valid_filter(filter: &str, placeholders: &[&str]) -> bool {
    let mut depth: i32 = 0;
    for c in filter.chars() {
        depth += match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        };
        if depth < 0 {
            return false;
        }
    }
    (1..=MAX_TEXT).contains(&filter.chars().count())
        && depth == 0
        && filter.starts_with('(')
        && filter.ends_with(')')
        && placeholders.iter().any(|name| filter.contains(name))
}

/// An attribute description: a letter, then letters, digits, `-` or `;`, at most 64.
fn valid_attribute(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
}

fn mappable_role(code: &str) -> Option<Role> {
    MAPPABLE_ROLES.into_iter().find(|role| role.code() == code)
}

const ROLE_MESSAGE: &str = "must be `admin`, `editor` or `viewer`";

impl SubmittedLdap {
    /// Checks every field, naming each problem; `Some` only when all are valid.
    /// `has_password`: a bind password is sealed already.
    pub fn check(&self, has_password: bool, errors: &mut ValidationErrors) -> Option<LdapConfig> {
        let start_tls = self.start_tls.unwrap_or(false);
        if !valid_url(&self.url) {
            errors.add(
                "url",
                "must be an ldap:// or ldaps:// URL with a host and no path",
            );
        } else if start_tls && self.url.starts_with("ldaps://") {
            errors.add("start_tls", "must be false with an ldaps:// URL");
        }
        for (field, dn) in [("bind_dn", &self.bind_dn), ("base_dn", &self.base_dn)] {
            if !valid_dn(dn) {
                errors.add(field, "must be a DN such as `dc=example,dc=com`");
            }
        }
        if self
            .group_base_dn
            .as_deref()
            .is_some_and(|dn| !valid_dn(dn))
        {
            errors.add(
                "group_base_dn",
                "must be a DN such as `ou=groups,dc=example,dc=com`",
            );
        }
        match &self.bind_password {
            Some(password) => {
                use fluxolab_kernel::ExposeSecret;
                if !(1..=MAX_PASSWORD).contains(&password.expose_secret().chars().count()) {
                    errors.add("bind_password", "must be 1 to 1024 characters");
                }
            }
            None if !has_password => errors.add("bind_password", "is required"),
            None => {}
        }
        let user_filter = self.user_filter.as_deref().unwrap_or(DEFAULT_USER_FILTER);
        if !valid_filter(user_filter, &["{username}"]) {
            errors.add(
                "user_filter",
                "must be an LDAP filter in parentheses containing `{username}`",
            );
        }
        let group_filter = self.group_filter.as_deref().unwrap_or(DEFAULT_GROUP_FILTER);
        if !valid_filter(group_filter, &["{dn}", "{username}"]) {
            errors.add(
                "group_filter",
                "must be an LDAP filter in parentheses containing `{dn}` or `{username}`",
            );
        }
        let email_attribute = self.email_attribute.as_deref().unwrap_or("mail");
        let name_attribute = self.name_attribute.as_deref().unwrap_or("cn");
        for (field, name) in [
            ("email_attribute", email_attribute),
            ("name_attribute", name_attribute),
        ] {
            if !valid_attribute(name) {
                errors.add(field, "must be an attribute name such as `mail`");
            }
        }
        let role_mapping = self.role_mapping.clone().unwrap_or_default();
        if role_mapping.len() > MAX_ROLE_MAPPINGS {
            errors.add("role_mapping", "must map at most 100 groups");
        }
        let mut mapping = BTreeMap::new();
        for (group, role) in role_mapping {
            if !valid_dn(&group) {
                errors.add(
                    format!("role_mapping.{group}"),
                    "the key must be a group DN",
                );
            } else if let Some(role) = mappable_role(&role) {
                mapping.insert(group, role);
            } else {
                errors.add(format!("role_mapping.{group}"), ROLE_MESSAGE);
            }
        }
        let default_role = mappable_role(self.default_role.as_deref().unwrap_or("viewer"));
        if default_role.is_none() {
            errors.add("default_role", ROLE_MESSAGE);
        }
        let sync_interval_minutes = self.sync_interval_minutes.unwrap_or(0);
        if sync_interval_minutes > MAX_SYNC_INTERVAL_MINUTES {
            errors.add("sync_interval_minutes", "must be between 0 and 10080");
        }
        let default_role = default_role?;
        errors.is_empty().then(|| LdapConfig {
            url: self.url.clone(),
            start_tls,
            bind_dn: self.bind_dn.clone(),
            base_dn: self.base_dn.clone(),
            user_filter: user_filter.to_owned(),
            email_attribute: email_attribute.to_owned(),
            name_attribute: name_attribute.to_owned(),
            group_base_dn: self.group_base_dn.clone(),
            group_filter: group_filter.to_owned(),
            role_mapping: mapping,
            default_role,
            sync_interval_minutes,
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted() -> SubmittedLdap {
        SubmittedLdap {
            url: "ldap://directory.example.com:389".to_owned(),
            start_tls: None,
            bind_dn: "cn=svc,dc=example,dc=com".to_owned(),
            bind_password: Some(SecretString::from("pw".to_owned())),
            base_dn: "ou=people,dc=example,dc=com".to_owned(),
            user_filter: None,
            email_attribute: None,
            name_attribute: None,
            group_base_dn: None,
            group_filter: None,
            role_mapping: Some(BTreeMap::from([
                ("cn=admins,dc=example,dc=com".to_owned(), "admin".to_owned()),
                ("cn=devs,dc=example,dc=com".to_owned(), "editor".to_owned()),
            ])),
            default_role: None,
            sync_interval_minutes: None,
            enabled: None,
        }
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let mut errors = ValidationErrors::new();
        let config = submitted().check(false, &mut errors).expect("valid");
        assert_eq!(config.user_filter, "(uid={username})");
        assert_eq!(config.group_filter, "(member={dn})");
        assert_eq!(
            (
                config.email_attribute.as_str(),
                config.name_attribute.as_str()
            ),
            ("mail", "cn")
        );
        assert_eq!(config.default_role, Role::Viewer);
        assert!(config.enabled && !config.start_tls);
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut bad = submitted();
        bad.url = "http://example.com".to_owned();
        bad.bind_dn = "nobody".to_owned();
        bad.bind_password = None;
        bad.user_filter = Some("(uid=fixed".to_owned());
        bad.email_attribute = Some("1mail".to_owned());
        bad.role_mapping = Some(BTreeMap::from([(
            "cn=x,dc=y".to_owned(),
            "owner".to_owned(),
        )]));
        bad.sync_interval_minutes = Some(20_000);
        let mut errors = ValidationErrors::new();
        assert_eq!(bad.check(false, &mut errors), None);
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "url",
                "bind_dn",
                "bind_password",
                "user_filter",
                "email_attribute",
                "role_mapping.cn=x,dc=y",
                "sync_interval_minutes"
            ]
        );
        let mut errors = ValidationErrors::new();
        let mut tls_twice = submitted();
        tls_twice.url = "ldaps://directory.example.com".to_owned();
        tls_twice.start_tls = Some(true);
        assert_eq!(tls_twice.check(true, &mut errors), None);
        assert_eq!(errors.errors()[0].field, "start_tls");
    }

    #[test]
    fn the_most_powerful_mapped_role_wins_and_dns_ignore_case() {
        let mut errors = ValidationErrors::new();
        let config = submitted().check(false, &mut errors).expect("valid");
        assert_eq!(config.role_for(&[]), Role::Viewer);
        assert_eq!(
            config.role_for(&["CN=Devs,DC=example,DC=com".to_owned()]),
            Role::Editor
        );
        assert_eq!(
            config.role_for(&[
                "cn=devs,dc=example,dc=com".to_owned(),
                "cn=admins,dc=example,dc=com".to_owned()
            ]),
            Role::Admin
        );
    }

    #[test]
    fn a_sync_result_round_trips_through_json() {
        let result = SyncResult {
            checked: 3,
            role_changes: 1,
            removed: 1,
            errors: vec!["kept the last owner".to_owned()],
        };
        assert_eq!(SyncResult::from_json(&result.to_json()), result);
    }
}
