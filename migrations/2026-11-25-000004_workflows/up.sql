-- Workflows and their immutable, numbered versions.

CREATE TABLE workflows (
    id             uuid PRIMARY KEY,
    workspace_id   uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 120),
    description    text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    active_version integer CHECK (active_version >= 1),
    archived_at    timestamptz,
    created_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflows_workspace_created_idx ON workflows (workspace_id, created_at, id);

CREATE TABLE workflow_versions (
    workflow_id  uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    version      integer NOT NULL CHECK (version >= 1),
    definition   jsonb NOT NULL,
    checksum     text NOT NULL,
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, version)
);
CREATE INDEX workflow_versions_workspace_idx ON workflow_versions (workspace_id);
-- "Which versions use credential X?" (definition @> '{"nodes":[{"credential_id":"…"}]}').
CREATE INDEX workflow_versions_definition_idx ON workflow_versions USING gin (definition jsonb_path_ops);

-- The active version must exist.
ALTER TABLE workflows ADD CONSTRAINT workflows_active_version_fkey
    FOREIGN KEY (id, active_version) REFERENCES workflow_versions (workflow_id, version)
    DEFERRABLE INITIALLY DEFERRED;
