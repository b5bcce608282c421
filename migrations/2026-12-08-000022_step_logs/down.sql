ALTER TABLE execution_steps DROP COLUMN IF EXISTS logs;
