-- Standard Webhooks (standardwebhooks.com) as an intake provider.
ALTER TABLE webhook_registrations
  DROP CONSTRAINT webhook_registrations_provider_check,
  ADD CONSTRAINT webhook_registrations_provider_check
    CHECK (provider IN ('meta', 'hmac_sha256', 'standard', 'none'));

-- One outbox for everything FluxoLab sends on its own. Workers lease a destination (not
-- a message) with SKIP LOCKED, so each destination gets its messages one delivery at a
-- time, in `seq` order.
CREATE TABLE outbox_destinations (
    destination   text PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    locked_until  timestamptz
);
CREATE INDEX outbox_destinations_workspace_idx ON outbox_destinations (workspace_id);

CREATE TABLE outbox (
    id               uuid PRIMARY KEY,
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    destination      text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('usage_alert')),
    payload          jsonb NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_workspace_idx ON outbox (workspace_id);
CREATE INDEX outbox_destination_idx ON outbox (destination, seq);

-- Usage alert firings not delivered yet move onto it; their own retry clock goes.
INSERT INTO outbox_destinations (destination, workspace_id)
SELECT DISTINCT 'usage_alert:' || alert_id, workspace_id
FROM workspace_usage_alert_events WHERE status = 'pending';
INSERT INTO outbox (id, workspace_id, destination, kind, payload, attempts, created_at)
SELECT gen_random_uuid(), workspace_id, 'usage_alert:' || alert_id, 'usage_alert',
       jsonb_build_object('alert_event_id', id), attempts, created_at
FROM workspace_usage_alert_events WHERE status = 'pending'
ORDER BY created_at, id;
ALTER TABLE workspace_usage_alert_events DROP COLUMN next_attempt_at;
