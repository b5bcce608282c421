-- Fencing: every claim bumps an execution's lease_token, and every write a worker makes
-- for the run (checkpoints, renewal, completion, suspension, release) is conditional on
-- the token it was given, so a worker that lost its lease can no longer write.
ALTER TABLE executions ADD COLUMN lease_token bigint NOT NULL DEFAULT 0;
-- The idempotency key an effectful step was sent with (the same on every attempt).
ALTER TABLE execution_steps ADD COLUMN effect_key text;
-- Claims take runs started before and back in the queue (released at shutdown, resumed
-- after a delay or a backoff) ahead of new ones: few rows, so a small partial index.
CREATE INDEX executions_resumed_due_idx ON executions (due_at)
  WHERE status = 'queued' AND started_at IS NOT NULL;
