#![doc = include_str!("../README.md")]

pub mod ids;
pub mod pagination;
pub mod permission;
pub mod principal;
pub mod validation;

pub use ids::{ApiKeyId, ExecutionId, UserId, WorkflowId, WorkspaceId};
pub use pagination::{Cursor, Page, PageRequest};
pub use permission::Permission;
pub use principal::{Actor, Forbidden, Principal};
pub use validation::{FieldError, ValidationErrors};
