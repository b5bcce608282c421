#![doc = include_str!("../README.md")]

pub mod definition;

pub use definition::{Connection, Definition, Node};
