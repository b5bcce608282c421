-- Schedules: a `trigger.schedule` workflow active in an environment has one row here,
-- written when it is activated there (and updated by promotion, removed by
-- deactivation and archiving). Worker processes claim due rows with
-- `FOR UPDATE SKIP LOCKED`; a slot becomes at most one run, because its claim
-- (workflow_schedule_fires, unique per schedule and slot) and its run are written in
-- the same transaction.
CREATE TABLE workflow_schedules (
    id                uuid PRIMARY KEY,
    workspace_id      uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id       uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    environment_id    uuid NOT NULL REFERENCES workspace_environments (id) ON DELETE CASCADE,
    -- The version whose params it follows.
    version           integer NOT NULL,
    -- A cron pattern read in an IANA time zone, or a fixed interval.
    cron              text CHECK (char_length(cron) BETWEEN 1 AND 200),
    timezone          text CHECK (char_length(timezone) BETWEEN 1 AND 64),
    interval_seconds  integer CHECK (interval_seconds >= 10),
    -- The next fire time; NULL: the pattern fires no more.
    next_at           timestamptz,
    -- The last slot fired, and what it gave.
    last_slot         timestamptz,
    last_fired_at     timestamptz,
    last_outcome      text CHECK (last_outcome IN ('started', 'quota_exceeded', 'not_active')),
    last_execution_id uuid REFERENCES executions (id) ON DELETE SET NULL,
    -- Earlier slots the last one caught up (they passed while no worker ran).
    last_skipped      bigint NOT NULL DEFAULT 0 CHECK (last_skipped >= 0),
    quota_refused_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_schedules_cadence CHECK (
        (cron IS NOT NULL AND timezone IS NOT NULL AND interval_seconds IS NULL)
        OR (cron IS NULL AND timezone IS NULL AND interval_seconds IS NOT NULL)),
    CONSTRAINT workflow_schedules_one_per_environment UNIQUE (workflow_id, environment_id),
    FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions (workflow_id, version)
);
CREATE INDEX workflow_schedules_workspace_idx ON workflow_schedules (workspace_id, workflow_id);
-- The scheduler's claim: the earliest due first.
CREATE INDEX workflow_schedules_due_idx ON workflow_schedules (next_at) WHERE next_at IS NOT NULL;

-- One row per slot a schedule fired for: the key that makes a slot one run.
CREATE TABLE workflow_schedule_fires (
    schedule_id   uuid NOT NULL REFERENCES workflow_schedules (id) ON DELETE CASCADE,
    slot          timestamptz NOT NULL,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    outcome       text CHECK (outcome IN ('started', 'quota_exceeded', 'not_active')),
    execution_id  uuid REFERENCES executions (id) ON DELETE SET NULL,
    fired_at      timestamptz NOT NULL,
    PRIMARY KEY (schedule_id, slot)
);
CREATE INDEX workflow_schedule_fires_workspace_idx ON workflow_schedule_fires (workspace_id, fired_at);

ALTER TABLE executions DROP CONSTRAINT executions_trigger_kind_check;
ALTER TABLE executions ADD CONSTRAINT executions_trigger_kind_check
    CHECK (trigger_kind IN ('test', 'run', 'retry', 'webhook', 'schedule'));
