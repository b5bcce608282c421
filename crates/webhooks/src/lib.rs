#![doc = include_str!("../README.md")]

pub mod signature;

pub use signature::{SignatureVerdict, verify_hub_signature};
