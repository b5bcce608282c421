//! The LDAP directory client (`ldap3` on tokio, rustls for `ldaps://` and StartTLS).
//! Every connection goes through the SSRF guard: the directory's address is resolved
//! and classified here, and the connection is opened to an allowed address only.
//! Usernames and DNs enter filters only through `ldap3::ldap_escape` (RFC 4515).

use std::time::Duration;

use async_trait::async_trait;
use fluxolab_kernel::{ExposeSecret, SecretString};
use fluxolab_workspace::ldap::{
    Authentication, Directory, DirectoryConnection, DirectoryEntry, DirectoryFailure,
};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, StdStream, ldap_escape};

use crate::guard::allowed_addresses;

/// How long connecting, and then each operation, may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The result code of a refused bind (`invalidCredentials`).
const INVALID_CREDENTIALS: u32 = 49;

/// The production [`Directory`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LdapDirectory;

fn unreachable(error: impl std::fmt::Display) -> DirectoryFailure {
    DirectoryFailure::Unreachable(error.to_string())
}

fn protocol(error: impl std::fmt::Display) -> DirectoryFailure {
    DirectoryFailure::Protocol(error.to_string())
}

/// `template` with `{username}` and `{dn}` replaced by their RFC 4515 escaped values, in
/// one pass (a replaced value is never scanned again).
pub fn render_filter(template: &str, username: &str, dn: Option<&str>) -> String {
    let username = ldap_escape(username);
    let dn = dn.map(ldap_escape);
    template
        .split("{username}")
        .map(|piece| match &dn {
            Some(dn) => piece.replace("{dn}", dn),
            None => piece.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(&username)
}

/// Opens a connection to an address the guard allows, and binds as the service account.
async fn open(connection: &DirectoryConnection) -> Result<Ldap, DirectoryFailure> {
    let url = url::Url::parse(&connection.url).map_err(unreachable)?;
    let host = url
        .host_str()
        .ok_or_else(|| unreachable("the URL has no host"))?;
    let port = url
        .port()
        .unwrap_or(if url.scheme() == "ldaps" { 636 } else { 389 });
    let addresses = allowed_addresses(host, port, connection.allow_internal_network)
        .await
        .map_err(unreachable)?;
    let stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(&addresses[..]))
        .await
        .map_err(unreachable)?
        .map_err(unreachable)?
        .into_std()
        .map_err(unreachable)?;
    let settings = LdapConnSettings::new()
        .set_conn_timeout(TIMEOUT)
        .set_starttls(connection.start_tls)
        .set_std_stream(StdStream::Tcp(stream));
    let (driver, mut ldap) = LdapConnAsync::with_settings(settings, &connection.url)
        .await
        .map_err(unreachable)?;
    ldap3::drive!(driver);
    let bound = ldap
        .with_timeout(TIMEOUT)
        .simple_bind(
            &connection.bind_dn,
            connection.bind_password.expose_secret(),
        )
        .await
        .map_err(unreachable)?;
    if bound.rc != 0 {
        return Err(DirectoryFailure::ServiceBindRefused(bound.to_string()));
    }
    Ok(ldap)
}

/// The one entry the user filter finds for `username`, with its groups; `None` when
/// there is none or more than one.
async fn find(
    ldap: &mut Ldap,
    connection: &DirectoryConnection,
    username: &str,
) -> Result<Option<DirectoryEntry>, DirectoryFailure> {
    let filter = render_filter(&connection.user_filter, username, None);
    let attributes = [
        connection.email_attribute.as_str(),
        connection.name_attribute.as_str(),
    ];
    let (entries, _) = ldap
        .with_timeout(TIMEOUT)
        .search(&connection.base_dn, Scope::Subtree, &filter, attributes)
        .await
        .map_err(unreachable)?
        .success()
        .map_err(protocol)?;
    let mut entries = entries.into_iter();
    let (Some(entry), None) = (entries.next(), entries.next()) else {
        return Ok(None);
    };
    let entry = SearchEntry::construct(entry);
    let first = |name: &str| {
        entry
            .attrs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, values)| values.first().cloned())
    };
    let email = first(&connection.email_attribute);
    let name = first(&connection.name_attribute);
    let group_filter = render_filter(&connection.group_filter, username, Some(&entry.dn));
    let (groups, _) = ldap
        .with_timeout(TIMEOUT)
        .search(
            &connection.group_base_dn,
            Scope::Subtree,
            &group_filter,
            ["1.1"],
        )
        .await
        .map_err(unreachable)?
        .success()
        .map_err(protocol)?;
    Ok(Some(DirectoryEntry {
        dn: entry.dn,
        email,
        name,
        groups: groups
            .into_iter()
            .map(|group| SearchEntry::construct(group).dn)
            .collect(),
    }))
}

#[async_trait]
impl Directory for LdapDirectory {
    #[tracing::instrument(name = "ldap.lookup", skip_all, fields(usernames = usernames.len()))]
    async fn lookup(
        &self,
        connection: &DirectoryConnection,
        usernames: &[String],
    ) -> Result<Vec<Option<DirectoryEntry>>, DirectoryFailure> {
        let mut ldap = open(connection).await?;
        let mut found = Vec::with_capacity(usernames.len());
        for username in usernames {
            found.push(find(&mut ldap, connection, username).await?);
        }
        // The answers are in; a failed goodbye changes nothing.
        let _ = ldap.unbind().await;
        Ok(found)
    }

    #[tracing::instrument(name = "ldap.authenticate", skip_all)]
    async fn authenticate(
        &self,
        connection: &DirectoryConnection,
        username: &str,
        password: &SecretString,
    ) -> Result<Authentication, DirectoryFailure> {
        let mut ldap = open(connection).await?;
        let Some(entry) = find(&mut ldap, connection, username).await? else {
            let _ = ldap.unbind().await;
            return Ok(Authentication::UnknownUser);
        };
        // An empty password would make an unauthenticated bind, which succeeds.
        if password.expose_secret().is_empty() {
            let _ = ldap.unbind().await;
            return Ok(Authentication::WrongPassword(entry));
        }
        let bound = ldap
            .with_timeout(TIMEOUT)
            .simple_bind(&entry.dn, password.expose_secret())
            .await
            .map_err(unreachable)?;
        let _ = ldap.unbind().await;
        match bound.rc {
            0 => Ok(Authentication::Authenticated(entry)),
            INVALID_CREDENTIALS => Ok(Authentication::WrongPassword(entry)),
            _ => Err(protocol(bound)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped_and_never_rescanned() {
        assert_eq!(
            render_filter("(uid={username})", "*)(uid=*", None),
            r"(uid=\2a\29\28uid=\2a)"
        );
        assert_eq!(
            render_filter(
                "(&(member={dn})(cn={username}))",
                "{dn}",
                Some("uid=a(b),dc=x")
            ),
            r"(&(member=uid=a\28b\29,dc=x)(cn={dn}))"
        );
    }
}
