#![doc = include_str!("../README.md")]

pub mod address_policy;
pub mod alerts;
pub mod effects;
pub mod guard;
pub mod ldap;
pub mod oidc;
pub mod secret_stores;
pub mod tester;
#[cfg(feature = "test-support")]
pub mod testing;

pub use address_policy::{AddressClass, classify};
pub use alerts::OutboundAlerts;
pub use effects::OutboundEffects;
pub use ldap::LdapDirectory;
pub use secret_stores::SecretStores;
pub use tester::OutboundTester;
