-- What a `code.javascript` step wrote to `console`: a JSON array of strings, bounded by
-- the runtime (100 lines, 16 KiB), secret values redacted. NULL for every other step.
ALTER TABLE execution_steps
  ADD COLUMN logs jsonb
    CONSTRAINT execution_steps_logs_array CHECK (jsonb_typeof(logs) = 'array');
