-- Sub-workflows: a run started by a `flow.run_workflow` step records the run that
-- started it (its lineage — depth limit and cycle refusal — is read by walking this
-- column up). A run whose step waits for a child is back in the queue with
-- `waiting_for` naming that child: when the child ends, the write that ends it makes
-- the parent due at once (no foreign key: it is a hint the parent clears when it
-- resumes, and a pruned child only means the parent's fallback recheck finds it gone).
ALTER TABLE executions
  ADD COLUMN parent_execution_id uuid
    CONSTRAINT executions_parent_execution_id_fkey REFERENCES executions (id) ON DELETE SET NULL,
  ADD COLUMN waiting_for uuid;
-- Two trigger kinds: `sub_workflow` (a `flow.run_workflow` step started it) and
-- `error_workflow` (a run of another workflow failed for good).
ALTER TABLE executions
  DROP CONSTRAINT executions_trigger_kind_check,
  ADD CONSTRAINT executions_trigger_kind_check CHECK (trigger_kind IN
    ('test', 'run', 'retry', 'webhook', 'schedule', 'mcp', 'sub_workflow', 'error_workflow'));
-- The foreign key's ON DELETE (pruning) looks children up by parent; few runs have one.
CREATE INDEX executions_parent_idx ON executions (parent_execution_id)
  WHERE parent_execution_id IS NOT NULL;

-- Error workflows: the workflow started when a run of this one fails for good.
ALTER TABLE workflows
  ADD COLUMN error_workflow_id uuid
    CONSTRAINT workflows_error_workflow_id_fkey REFERENCES workflows (id) ON DELETE SET NULL,
  ADD CONSTRAINT workflows_error_workflow_not_itself CHECK (error_workflow_id <> id);
CREATE INDEX workflows_error_workflow_idx ON workflows (error_workflow_id)
  WHERE error_workflow_id IS NOT NULL;
