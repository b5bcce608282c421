DROP INDEX IF EXISTS workflows_error_workflow_idx;
ALTER TABLE workflows
  DROP CONSTRAINT IF EXISTS workflows_error_workflow_not_itself,
  DROP COLUMN IF EXISTS error_workflow_id;
DROP INDEX IF EXISTS executions_parent_idx;
-- Runs of the removed kinds stay, as plain runs.
UPDATE executions SET trigger_kind = 'run' WHERE trigger_kind IN ('sub_workflow', 'error_workflow');
ALTER TABLE executions
  DROP CONSTRAINT executions_trigger_kind_check,
  ADD CONSTRAINT executions_trigger_kind_check CHECK (trigger_kind IN ('test', 'run', 'retry', 'webhook', 'schedule', 'mcp'));
ALTER TABLE executions
  DROP COLUMN IF EXISTS waiting_for,
  DROP COLUMN IF EXISTS parent_execution_id;
