#![doc = include_str!("../README.md")]

pub mod address_policy;
pub mod alerts;
pub mod effects;
pub mod guard;
pub mod ldap;
pub mod log_sink;
pub mod oidc;
pub mod secret_stores;
pub mod tester;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod webhook_post;

pub use address_policy::{AddressClass, classify};
pub use alerts::OutboundAlerts;
pub use effects::OutboundEffects;
pub use ldap::LdapDirectory;
pub use log_sink::OutboundLogSink;
pub use secret_stores::SecretStores;
pub use tester::OutboundTester;
