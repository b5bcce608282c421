-- Usage alerts: a share of a plan limit that, once crossed in a period, notifies by
-- e-mail or by a signed webhook. Each firing is an event row, which is also the
-- delivery's queue entry (retried with backoff).

CREATE TABLE workspace_usage_alerts (
    id                   uuid PRIMARY KEY,
    workspace_id         uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    metric               text NOT NULL CHECK (metric IN ('executions', 'members', 'workflows', 'active_workflows', 'credentials')),
    threshold_percent    integer NOT NULL CHECK (threshold_percent BETWEEN 1 AND 1000),
    channel              text NOT NULL CHECK (channel IN ('email', 'webhook')),
    target               text NOT NULL CHECK (length(target) BETWEEN 3 AND 2048),
    -- The webhook signing secret, sealed in the vault.
    secret_credential_id uuid REFERENCES credentials (id) ON DELETE SET NULL,
    enabled              boolean NOT NULL DEFAULT true,
    created_by           uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspace_usage_alerts_workspace_idx ON workspace_usage_alerts (workspace_id, created_at DESC, id DESC);

CREATE TABLE workspace_usage_alert_events (
    id                uuid PRIMARY KEY,
    alert_id          uuid NOT NULL REFERENCES workspace_usage_alerts (id) ON DELETE CASCADE,
    workspace_id      uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    period_start      timestamptz NOT NULL,
    threshold_percent integer NOT NULL,
    used              bigint NOT NULL,
    limit_value       bigint NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_error        text,
    delivered_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- Fires at most once per period per threshold, however many workers evaluate.
    CONSTRAINT workspace_usage_alert_events_once UNIQUE (alert_id, period_start, threshold_percent)
);
CREATE INDEX workspace_usage_alert_events_alert_idx ON workspace_usage_alert_events (alert_id, created_at DESC, id DESC);
CREATE INDEX workspace_usage_alert_events_due_idx ON workspace_usage_alert_events (next_attempt_at) WHERE status = 'pending';
