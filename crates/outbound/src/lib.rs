#![doc = include_str!("../README.md")]

pub mod address_policy;

pub use address_policy::{AddressClass, classify};
