-- Log destinations: where a workspace's activity, API-key audit, finished runs and
-- webhook verdicts are streamed (HTTP batches signed with Standard Webhooks, or syslog).
CREATE TABLE log_destinations (
    id                          uuid PRIMARY KEY,
    workspace_id                uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                        text NOT NULL,
    kind                        text NOT NULL CHECK (kind IN ('http', 'syslog')),
    event_types                 text[] NOT NULL CHECK (
        cardinality(event_types) > 0
        AND event_types <@ ARRAY['activities', 'api_key_audit', 'executions', 'webhook_events']),
    enabled                     boolean NOT NULL DEFAULT true,
    -- The configuration without secrets (secret header values are in the vault).
    config                      jsonb NOT NULL,
    secret_headers_credential_id uuid REFERENCES credentials (id) ON DELETE SET NULL,
    signing_secret_credential_id uuid REFERENCES credentials (id) ON DELETE SET NULL,
    -- The secret a rotation replaced, still signing until `previous_secret_expires_at`.
    previous_secret_credential_id uuid REFERENCES credentials (id) ON DELETE SET NULL,
    previous_secret_expires_at  timestamptz,
    -- `failing` once deliveries have failed for 24 hours; back to `active` on success.
    status                      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'failing')),
    failing_since               timestamptz,
    last_delivered_at           timestamptz,
    revision                    integer NOT NULL DEFAULT 1,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name)
);
CREATE INDEX log_destinations_enabled_idx ON log_destinations (workspace_id) WHERE enabled;

-- Recent delivery attempts, shown by GET /api/settings/log-destinations/{id}/deliveries.
CREATE TABLE log_destination_deliveries (
    id               uuid PRIMARY KEY,
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    destination_id   uuid NOT NULL REFERENCES log_destinations (id) ON DELETE CASCADE,
    attempted_at     timestamptz NOT NULL DEFAULT now(),
    events           integer NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    -- The receiver's HTTP status, when it answered one.
    status_code      integer,
    latency_ms       integer NOT NULL,
    error            text,
    -- `true` for a POST /test delivery.
    test             boolean NOT NULL DEFAULT false
);
CREATE INDEX log_destination_deliveries_idx
    ON log_destination_deliveries (workspace_id, destination_id, attempted_at DESC, id DESC);

ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check,
  ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('usage_alert', 'log_event'));

-- The events are captured by triggers, in the transaction that records the fact, for
-- every writer at once (the intake's group commit included): one INSERT … SELECT per
-- statement, joined with the workspace's enabled destinations (none: nothing written).
-- Events carry ids, actions, actors and outcomes: no metadata, bodies or secrets.
CREATE FUNCTION log_events_of_activities() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO outbox (id, workspace_id, destination, kind, payload)
  SELECT gen_random_uuid(), d.workspace_id, 'log:' || d.id, 'log_event',
         jsonb_build_object(
           'type', 'activities', 'id', n.id, 'workspace_id', n.workspace_id,
           'occurred_at', n.created_at, 'action', n.action,
           'actor', CASE
             WHEN n.actor_user_id IS NOT NULL THEN jsonb_build_object('user_id', n.actor_user_id)
             WHEN n.actor_api_key_id IS NOT NULL THEN jsonb_build_object('api_key_id', n.actor_api_key_id)
           END,
           'target', CASE WHEN n.target_type IS NOT NULL
             THEN jsonb_build_object('type', n.target_type, 'id', n.target_id) END)
  FROM new_rows n JOIN log_destinations d ON d.workspace_id = n.workspace_id
  WHERE d.enabled AND 'activities' = ANY (d.event_types)
  ORDER BY n.created_at, n.id;
  RETURN NULL;
END $$;
CREATE TRIGGER activities_log_events AFTER INSERT ON activities
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION log_events_of_activities();

CREATE FUNCTION log_events_of_api_key_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO outbox (id, workspace_id, destination, kind, payload)
  SELECT gen_random_uuid(), d.workspace_id, 'log:' || d.id, 'log_event',
         jsonb_build_object(
           'type', 'api_key_audit', 'id', n.id, 'workspace_id', n.workspace_id,
           'occurred_at', n.created_at, 'action', n.action, 'api_key_id', n.key_id,
           'actor', CASE WHEN n.actor_user_id IS NOT NULL
             THEN jsonb_build_object('user_id', n.actor_user_id) END)
  FROM new_rows n JOIN log_destinations d ON d.workspace_id = n.workspace_id
  WHERE d.enabled AND 'api_key_audit' = ANY (d.event_types)
  ORDER BY n.created_at, n.id;
  RETURN NULL;
END $$;
CREATE TRIGGER api_key_audit_log_events AFTER INSERT ON workspace_api_key_audit
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION log_events_of_api_key_audit();

CREATE FUNCTION log_events_of_webhook_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO outbox (id, workspace_id, destination, kind, payload)
  SELECT gen_random_uuid(), d.workspace_id, 'log:' || d.id, 'log_event',
         jsonb_build_object(
           'type', 'webhook_events', 'id', n.id, 'workspace_id', n.workspace_id,
           'occurred_at', n.received_at, 'registration_id', n.registration_id,
           'verdict', n.verdict, 'reason', n.reason, 'execution_id', n.execution_id)
  FROM new_rows n JOIN log_destinations d ON d.workspace_id = n.workspace_id
  WHERE d.enabled AND 'webhook_events' = ANY (d.event_types)
  ORDER BY n.received_at, n.id;
  RETURN NULL;
END $$;
CREATE TRIGGER webhook_events_log_events AFTER INSERT ON webhook_events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION log_events_of_webhook_events();

-- A run is logged once, when it reaches its final state. Row-level with a WHEN clause:
-- the engine's many other updates of a run never call the function.
CREATE FUNCTION log_event_of_execution() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO outbox (id, workspace_id, destination, kind, payload)
  SELECT gen_random_uuid(), d.workspace_id, 'log:' || d.id, 'log_event',
         jsonb_build_object(
           'type', 'executions', 'id', NEW.id, 'workspace_id', NEW.workspace_id,
           'occurred_at', coalesce(NEW.finished_at, now()), 'workflow_id', NEW.workflow_id,
           'version', NEW.version, 'environment_id', NEW.environment_id,
           'status', NEW.status, 'trigger_kind', NEW.trigger_kind, 'attempt', NEW.attempt,
           'parent_execution_id', NEW.parent_execution_id)
  FROM log_destinations d
  WHERE d.workspace_id = NEW.workspace_id AND d.enabled AND 'executions' = ANY (d.event_types);
  RETURN NULL;
END $$;
CREATE TRIGGER executions_log_event_on_finish AFTER UPDATE OF status ON executions
  FOR EACH ROW
  WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled')
        AND OLD.status NOT IN ('succeeded', 'failed', 'cancelled'))
  EXECUTE FUNCTION log_event_of_execution();
CREATE TRIGGER executions_log_event_on_insert AFTER INSERT ON executions
  FOR EACH ROW
  WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled'))
  EXECUTE FUNCTION log_event_of_execution();

-- A destination's secrets (signing secrets, secret header values) are its own, not the
-- workspace's credentials.
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
                                 d.previous_secret_credential_id));
