-- Environments get their meaning: workflows are active per environment (at different
-- versions), executions and webhook registrations run in one, and variables are rows
-- (secret ones sealed in the vault) instead of a JSON column.

ALTER TABLE workspace_environments
    ADD COLUMN is_default boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT workspace_environments_description_check CHECK (length(description) <= 500);
UPDATE workspace_environments SET is_default = true WHERE name = 'production';
-- Runs that name no environment run in the default one: one per workspace.
CREATE UNIQUE INDEX workspace_environments_default_idx ON workspace_environments (workspace_id) WHERE is_default;

CREATE TABLE environment_variables (
    environment_id       uuid NOT NULL REFERENCES workspace_environments (id) ON DELETE CASCADE,
    workspace_id         uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                 text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$'),
    -- A plain value, or (for a secret) the vault entry holding it; never both.
    value                text CHECK (length(value) <= 8192),
    secret_credential_id uuid REFERENCES credentials (id),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment_id, name),
    CHECK ((value IS NULL) <> (secret_credential_id IS NULL))
);
INSERT INTO environment_variables (environment_id, workspace_id, name, value)
SELECT e.id, e.workspace_id, v.key, v.value #>> '{}'
FROM workspace_environments e,
     jsonb_each(CASE WHEN jsonb_typeof(e.variables) = 'object' THEN e.variables ELSE '{}'::jsonb END) AS v
WHERE v.key ~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$';
ALTER TABLE workspace_environments DROP COLUMN variables;

-- Which version of a workflow is active in which environment.
CREATE TABLE workflow_deployments (
    workflow_id    uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    environment_id uuid NOT NULL REFERENCES workspace_environments (id) ON DELETE CASCADE,
    workspace_id   uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    version        integer NOT NULL,
    activated_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    activated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, environment_id),
    FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions (workflow_id, version)
);
CREATE INDEX workflow_deployments_environment_idx ON workflow_deployments (environment_id);
CREATE INDEX workflow_deployments_workspace_idx ON workflow_deployments (workspace_id);
INSERT INTO workflow_deployments (workflow_id, environment_id, workspace_id, version, activated_at)
SELECT w.id, e.id, w.workspace_id, w.active_version, w.updated_at
FROM workflows w JOIN workspace_environments e ON e.workspace_id = w.workspace_id AND e.is_default
WHERE w.active_version IS NOT NULL AND w.archived_at IS NULL;
ALTER TABLE workflows DROP CONSTRAINT workflows_active_version_fkey;
ALTER TABLE workflows DROP COLUMN active_version;

ALTER TABLE executions ADD COLUMN environment_id uuid REFERENCES workspace_environments (id) ON DELETE CASCADE;
UPDATE executions x SET environment_id = e.id
FROM workspace_environments e WHERE e.workspace_id = x.workspace_id AND e.is_default;
ALTER TABLE executions ALTER COLUMN environment_id SET NOT NULL;
CREATE INDEX executions_environment_created_idx ON executions (environment_id, created_at DESC);

ALTER TABLE webhook_registrations ADD COLUMN environment_id uuid REFERENCES workspace_environments (id) ON DELETE CASCADE;
UPDATE webhook_registrations r SET environment_id = e.id
FROM workspace_environments e WHERE e.workspace_id = r.workspace_id AND e.is_default;
ALTER TABLE webhook_registrations ALTER COLUMN environment_id SET NOT NULL;

-- Secret variables are vault entries the environments feature owns.
CREATE OR REPLACE VIEW user_credentials AS
SELECT c.*
FROM credentials c
WHERE NOT EXISTS (SELECT 1 FROM webhook_registrations r WHERE r.signing_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_usage_alerts u WHERE u.secret_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM environment_variables v WHERE v.secret_credential_id = c.id);
