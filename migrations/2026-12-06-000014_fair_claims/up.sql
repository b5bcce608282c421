-- Fair claims: each claim first takes the oldest due run of every workspace with due
-- work, found by a skip scan over this index (one probe per workspace), then fills the
-- rest oldest-first over executions_due_idx.
CREATE INDEX executions_workspace_due_idx ON executions (workspace_id, due_at) WHERE status = 'queued';
