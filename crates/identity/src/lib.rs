#![doc = include_str!("../README.md")]

pub mod email;
pub mod password;

pub use email::{EmailAddress, InvalidEmail};
pub use password::{PasswordHash, PasswordPolicyError};
