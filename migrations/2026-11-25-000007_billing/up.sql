-- The billing history of each workspace: plan changes and period renewals (what a
-- payment provider would later attach to).

CREATE TABLE billing_events (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('plan_changed', 'period_renewed')),
    from_plan     text,
    to_plan       text NOT NULL,
    actor_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_events_workspace_idx ON billing_events (workspace_id, created_at DESC, id DESC);

-- One row per workspace per day: that day's executions and webhook events, and the
-- counts (members, workflows…) as of the snapshot. Upserted, so the job is idempotent.
CREATE TABLE workspace_usage_snapshots (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    day          date NOT NULL,
    metrics      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, day)
);
