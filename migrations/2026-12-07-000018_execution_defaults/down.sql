ALTER TABLE executions
  DROP COLUMN IF EXISTS save_successful_steps,
  DROP COLUMN IF EXISTS timeout_seconds;
