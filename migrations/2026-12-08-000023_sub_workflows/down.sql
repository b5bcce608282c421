DROP INDEX IF EXISTS workflows_error_workflow_idx;
ALTER TABLE workflows
  DROP CONSTRAINT IF EXISTS workflows_error_workflow_not_itself,
  DROP COLUMN IF EXISTS error_workflow_id;
DROP INDEX IF EXISTS executions_parent_idx;
ALTER TABLE executions
  DROP COLUMN IF EXISTS waiting_for,
  DROP COLUMN IF EXISTS parent_execution_id;
