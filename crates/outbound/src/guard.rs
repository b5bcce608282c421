//! The SSRF guard: every address an outbound connection may use is classified, and
//! anything internal (loopback, private, link-local, unique-local, cloud metadata) is
//! refused unless the workspace allows it. Names are resolved by the guard itself, so a
//! name that resolves to an internal address (DNS rebinding included) is caught too.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::address_policy::{AddressClass, classify};

/// Why a target is refused.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(
        "{host} resolves only to internal addresses ({class:?}); the workspace does not allow internal targets"
    )]
    Internal { host: String, class: AddressClass },
    #[error("could not resolve {host}: {source}")]
    Lookup {
        host: String,
        #[source]
        source: std::io::Error,
    },
}

/// The addresses of `host:port` that the policy allows.
pub async fn allowed_addresses(
    host: &str,
    port: u16,
    allow_internal: bool,
) -> Result<Vec<SocketAddr>, GuardError> {
    let resolved: Vec<SocketAddr> = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| GuardError::Lookup {
                host: host.to_owned(),
                source,
            })?
            .collect(),
    };
    let mut refused = None;
    let allowed: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|address| {
            let class = classify(address.ip());
            let ok = allow_internal || class == AddressClass::Public;
            if !ok {
                refused = Some(class);
            }
            ok
        })
        .collect();
    match (allowed.is_empty(), refused) {
        (true, Some(class)) => Err(GuardError::Internal {
            host: host.to_owned(),
            class,
        }),
        (true, None) => Err(GuardError::Lookup {
            host: host.to_owned(),
            source: std::io::Error::other("no address"),
        }),
        (false, _) => Ok(allowed),
    }
}

/// A reqwest resolver that only hands out allowed addresses.
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    pub allow_internal: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_internal = self.allow_internal;
        Box::pin(async move {
            let addresses = allowed_addresses(name.as_str(), 0, allow_internal)
                .await
                .map_err(|error| -> Box<dyn std::error::Error + Send + Sync> { Box::new(error) })?;
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_literals_are_refused_unless_allowed() {
        assert!(matches!(
            allowed_addresses("127.0.0.1", 80, false).await,
            Err(GuardError::Internal {
                class: AddressClass::Loopback,
                ..
            })
        ));
        assert!(matches!(
            allowed_addresses("169.254.169.254", 80, false).await,
            Err(GuardError::Internal {
                class: AddressClass::CloudMetadata,
                ..
            })
        ));
        assert!(allowed_addresses("127.0.0.1", 80, true).await.is_ok());
        assert!(allowed_addresses("[::1]", 80, true).await.is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        assert!(matches!(
            allowed_addresses("localhost", 80, false).await,
            Err(GuardError::Internal { .. })
        ));
    }
}
