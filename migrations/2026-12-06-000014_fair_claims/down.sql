DROP INDEX IF EXISTS executions_workspace_due_idx;
