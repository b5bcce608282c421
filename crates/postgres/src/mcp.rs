//! MCP sessions (the workflows domain's `McpSessions` port): one row each, shared by every
//! API process, alive until `expires_at`, which each use pushes back.

use std::time::Duration;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use fluxolab_kernel::{ApiKeyId, StorageError};
use fluxolab_workflows::mcp::{McpSessionId, McpSessions, NewMcpSession};
use time::OffsetDateTime;

use crate::error::storage;
use crate::pool::pooled;
use crate::schema::mcp_sessions;

crate::repository::pg_repository!(
    /// MCP sessions over the pool.
    PgMcpSessions
);

/// `now + ttl`, saturating far in the future.
fn expiry(ttl: Duration) -> OffsetDateTime {
    let ttl = time::Duration::try_from(ttl).unwrap_or(time::Duration::days(365));
    OffsetDateTime::now_utc().saturating_add(ttl)
}

#[async_trait]
impl McpSessions for PgMcpSessions {
    #[tracing::instrument(name = "db.mcp_sessions.open", level = "debug", skip_all)]
    async fn open(&self, session: &NewMcpSession) -> Result<(), StorageError> {
        let mut connection = pooled(&self.pool).await?;
        // Expired sessions go when new ones come (one index range scan).
        diesel::delete(mcp_sessions::table.filter(mcp_sessions::expires_at.lt(diesel::dsl::now)))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        diesel::insert_into(mcp_sessions::table)
            .values((
                mcp_sessions::id.eq(session.id.as_uuid()),
                mcp_sessions::workspace_id.eq(session.workspace_id.as_uuid()),
                mcp_sessions::api_key_id.eq(session.api_key_id.as_uuid()),
                mcp_sessions::protocol_version.eq(&session.protocol_version),
                mcp_sessions::expires_at.eq(expiry(session.idle_ttl)),
            ))
            .execute(&mut connection)
            .await
            .map_err(storage)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.mcp_sessions.touch", level = "debug", skip_all)]
    async fn touch(
        &self,
        id: McpSessionId,
        key: ApiKeyId,
        idle_ttl: Duration,
    ) -> Result<Option<String>, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        diesel::update(
            mcp_sessions::table
                .filter(mcp_sessions::id.eq(id.as_uuid()))
                .filter(mcp_sessions::api_key_id.eq(key.as_uuid()))
                .filter(mcp_sessions::expires_at.gt(diesel::dsl::now)),
        )
        .set(mcp_sessions::expires_at.eq(expiry(idle_ttl)))
        .returning(mcp_sessions::protocol_version)
        .get_result(&mut connection)
        .await
        .optional()
        .map_err(storage)
    }

    #[tracing::instrument(name = "db.mcp_sessions.close", level = "debug", skip_all)]
    async fn close(&self, id: McpSessionId, key: ApiKeyId) -> Result<bool, StorageError> {
        let mut connection = pooled(&self.pool).await?;
        let deleted = diesel::delete(
            mcp_sessions::table
                .filter(mcp_sessions::id.eq(id.as_uuid()))
                .filter(mcp_sessions::api_key_id.eq(key.as_uuid()))
                .filter(mcp_sessions::expires_at.gt(diesel::dsl::now)),
        )
        .execute(&mut connection)
        .await
        .map_err(storage)?;
        Ok(deleted > 0)
    }
}
