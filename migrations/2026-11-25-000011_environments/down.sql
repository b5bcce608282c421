CREATE OR REPLACE VIEW user_credentials AS
SELECT c.*
FROM credentials c
WHERE NOT EXISTS (SELECT 1 FROM webhook_registrations r WHERE r.signing_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_usage_alerts u WHERE u.secret_credential_id = c.id);

ALTER TABLE webhook_registrations DROP COLUMN environment_id;
ALTER TABLE executions DROP COLUMN environment_id;

-- The default environment's deployments become the single active version again.
ALTER TABLE workflows ADD COLUMN active_version integer CHECK (active_version >= 1);
UPDATE workflows w SET active_version = d.version
FROM workflow_deployments d JOIN workspace_environments e ON e.id = d.environment_id AND e.is_default
WHERE d.workflow_id = w.id;
ALTER TABLE workflows ADD CONSTRAINT workflows_active_version_fkey
    FOREIGN KEY (id, active_version) REFERENCES workflow_versions (workflow_id, version)
    DEFERRABLE INITIALLY DEFERRED;
DROP TABLE workflow_deployments;

-- Plain variables go back to the JSON column; secret ones (and their vault entries) go.
ALTER TABLE workspace_environments ADD COLUMN variables jsonb NOT NULL DEFAULT '{}'::jsonb;
UPDATE workspace_environments e SET variables = v.variables
FROM (SELECT environment_id, jsonb_object_agg(name, value) AS variables
      FROM environment_variables WHERE value IS NOT NULL GROUP BY environment_id) AS v
WHERE v.environment_id = e.id;
CREATE TEMPORARY TABLE dropped_secrets ON COMMIT DROP AS
SELECT secret_credential_id AS id FROM environment_variables WHERE secret_credential_id IS NOT NULL;
DROP TABLE environment_variables;
DELETE FROM credentials WHERE id IN (SELECT id FROM dropped_secrets);

DROP INDEX workspace_environments_default_idx;
ALTER TABLE workspace_environments
    DROP CONSTRAINT workspace_environments_description_check,
    DROP COLUMN is_default;
