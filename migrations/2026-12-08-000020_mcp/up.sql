-- Workflows as MCP tools (POST /api/mcp).

-- A tool call is a run of its own trigger kind.
ALTER TABLE executions DROP CONSTRAINT executions_trigger_kind_check;
ALTER TABLE executions ADD CONSTRAINT executions_trigger_kind_check
    CHECK (trigger_kind IN ('test', 'run', 'retry', 'webhook', 'schedule', 'mcp'));

-- MCP sessions (`Mcp-Session-Id`), shared by every API process. A session belongs to the
-- API key that opened it and lives until `expires_at`, pushed back on each use
-- (MCP_SESSION_IDLE_SECONDS); expired rows are cleared when sessions are opened.
CREATE TABLE mcp_sessions (
    id               uuid PRIMARY KEY,
    workspace_id     uuid NOT NULL REFERENCES workspaces ON DELETE CASCADE,
    api_key_id       uuid NOT NULL REFERENCES workspace_api_keys ON DELETE CASCADE,
    protocol_version text NOT NULL CHECK (length(protocol_version) BETWEEN 1 AND 32),
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL
);
CREATE INDEX mcp_sessions_workspace_idx ON mcp_sessions (workspace_id);
CREATE INDEX mcp_sessions_api_key_idx ON mcp_sessions (api_key_id);
CREATE INDEX mcp_sessions_expires_idx ON mcp_sessions (expires_at);
