//! Joins the generated schema cannot declare: `diesel print-schema` writes a
//! `joinable!` for a foreign key only when it is the one key between two tables.

use crate::schema::{users, workspace_members};

// A member's user: `workspace_members` also refers to `users` through `invited_by`.
diesel::joinable!(workspace_members -> users (user_id));
