-- Executions (also the job queue) and their steps (the checkpoints a resumed run skips).

CREATE TABLE executions (
    id               uuid PRIMARY KEY,
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id      uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version          integer NOT NULL,
    status           text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    trigger_kind     text NOT NULL CHECK (trigger_kind IN ('test', 'run', 'retry', 'webhook')),
    input            jsonb NOT NULL DEFAULT 'null'::jsonb,
    output           jsonb,
    error            text,
    attempt          integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    retry_of         uuid REFERENCES executions (id) ON DELETE SET NULL,
    due_at           timestamptz NOT NULL DEFAULT now(),
    locked_by        text,
    locked_until     timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions (workflow_id, version)
);
CREATE INDEX executions_workspace_created_idx ON executions (workspace_id, created_at DESC, id DESC);
CREATE INDEX executions_workflow_created_idx ON executions (workflow_id, created_at DESC);
-- The queue: due rows, and leases to reclaim.
CREATE INDEX executions_due_idx ON executions (due_at) WHERE status = 'queued';
CREATE INDEX executions_lease_idx ON executions (locked_until) WHERE status = 'running';

CREATE TABLE execution_steps (
    id           uuid PRIMARY KEY,
    execution_id uuid NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    position     integer NOT NULL CHECK (position >= 0),
    node_id      text NOT NULL,
    node_type    text NOT NULL,
    input        jsonb,
    output       jsonb,
    error        text,
    route        text,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    CONSTRAINT execution_steps_position_key UNIQUE (execution_id, position)
);
CREATE INDEX execution_steps_workspace_idx ON execution_steps (workspace_id);
