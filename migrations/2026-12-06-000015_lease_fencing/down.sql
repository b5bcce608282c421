DROP INDEX IF EXISTS executions_resumed_due_idx;
ALTER TABLE execution_steps DROP COLUMN IF EXISTS effect_key;
ALTER TABLE executions DROP COLUMN IF EXISTS lease_token;
