#![doc = include_str!("../README.md")]

pub mod envelope;
pub mod kind;
pub mod masking;

pub use kind::CredentialKind;
pub use masking::mask_hint;
