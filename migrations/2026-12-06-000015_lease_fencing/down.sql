ALTER TABLE execution_steps DROP COLUMN IF EXISTS effect_key;
ALTER TABLE executions DROP COLUMN IF EXISTS lease_token;
