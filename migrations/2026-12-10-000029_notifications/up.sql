-- Notifications (issue #21, section 3): a run's final failure and the weekly usage
-- report, delivered through the outbox as `notification` messages.
ALTER TABLE outbox
  DROP CONSTRAINT IF EXISTS outbox_kind_check,
  ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('usage_alert', 'log_event', 'notification'));

-- The signing secret (`whsec_…`) of the failure webhook, sealed in the vault.
ALTER TABLE workspace_settings
  ADD COLUMN failure_webhook_secret_id uuid REFERENCES credentials (id) ON DELETE SET NULL;
CREATE INDEX workspace_settings_failure_webhook_secret_idx
  ON workspace_settings (failure_webhook_secret_id) WHERE failure_webhook_secret_id IS NOT NULL;

-- One notice per workflow gathers its final failures: written in the statement that
-- ends the run, open until a worker takes it for delivery (later failures then start
-- the next notice, due ten minutes after this one was taken).
CREATE TABLE execution_failure_notices (
    id               uuid PRIMARY KEY,
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id      uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    failures         integer NOT NULL CHECK (failures > 0),
    -- The first few runs it covers (at most 20).
    execution_ids    uuid[] NOT NULL,
    first_failed_at  timestamptz NOT NULL,
    last_failed_at   timestamptz NOT NULL,
    last_error       text,
    due_at           timestamptz NOT NULL,
    closed_at        timestamptz,
    emailed_at       timestamptz,
    webhook_sent_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX execution_failure_notices_workspace_idx ON execution_failure_notices (workspace_id);
CREATE UNIQUE INDEX execution_failure_notices_open
  ON execution_failure_notices (workflow_id) WHERE closed_at IS NULL;
CREATE INDEX execution_failure_notices_workflow_idx
  ON execution_failure_notices (workflow_id, closed_at);

-- One weekly usage report per workspace per week (Monday 08:00 in its time zone),
-- however many workers look.
CREATE TABLE weekly_usage_reports (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    slot          timestamptz NOT NULL,
    sent_to       text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT weekly_usage_reports_once UNIQUE (workspace_id, slot)
);

-- The failure webhook's secret is the workspace's, not a user credential.
CREATE OR REPLACE VIEW user_credentials AS
SELECT c.*
FROM credentials c
WHERE NOT EXISTS (SELECT 1 FROM webhook_registrations r WHERE r.signing_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_usage_alerts u WHERE u.secret_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM environment_variables v WHERE v.secret_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_secret_providers p WHERE p.credentials_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_sso_configs s WHERE s.client_secret_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_ldap_configs l WHERE l.bind_password_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM log_destinations d
                  WHERE c.id IN (d.secret_headers_credential_id, d.signing_secret_credential_id,
                                 d.previous_secret_credential_id))
  AND NOT EXISTS (SELECT 1 FROM workspace_settings w WHERE w.failure_webhook_secret_id = c.id);
