//! The boilerplate every repository of this crate shares.

/// A `Debug` that names the type and nothing else: a repository holds a pool (and perhaps
/// caches or handles) whose contents say nothing useful in a log line.
macro_rules! opaque_debug {
    ($name:ident) => {
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

/// Declares a repository that holds only the pool: a cloneable `pub struct $name` with the
/// given doc comment, an [`opaque_debug!`] `Debug`, and `new(pool)`.
macro_rules! pg_repository {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name {
            pool: $crate::DbPool,
        }

        $crate::repository::opaque_debug!($name);

        impl $name {
            /// A repository over `pool`.
            pub fn new(pool: $crate::DbPool) -> Self {
                Self { pool }
            }
        }
    };
}

pub(crate) use {opaque_debug, pg_repository};
