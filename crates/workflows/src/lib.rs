#![doc = include_str!("../README.md")]

pub mod definition;
pub mod registry;
pub mod validate;

pub use definition::{Connection, Definition, Node};
