-- Declarative connectors: a workspace installs a manifest (its actions become node
-- types `connector.<name>.<action>` there). The manifest is stored as validated and
-- normalised by the domain; `name` and `version` repeat its own for constraints and
-- lists.

CREATE TABLE workspace_connectors (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (name ~ '^[a-z0-9-]{1,40}$'),
    -- A semantic version (`1.4.0`); upgrades only raise it.
    version      text NOT NULL CHECK (length(version) BETWEEN 5 AND 256),
    manifest     jsonb NOT NULL,
    enabled      boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workspace_connectors_name_key UNIQUE (workspace_id, name)
);
CREATE INDEX workspace_connectors_workspace_idx
    ON workspace_connectors (workspace_id, created_at, id);
