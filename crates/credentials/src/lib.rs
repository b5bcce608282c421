#![doc = include_str!("../README.md")]

pub mod envelope;
pub mod kind;
pub mod masking;
pub mod model;
pub mod owned;
pub mod ports;
pub mod service;

pub use kind::CredentialKind;
pub use masking::mask_hint;
pub use service::{VaultError, VaultPorts, VaultService};
