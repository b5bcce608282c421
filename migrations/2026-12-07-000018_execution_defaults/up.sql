-- What a run takes from its workspace's `execution_defaults` when it is queued (the
-- INSERT that queues it reads them; the claim hands them to the worker, so neither
-- costs a round trip): the seconds one attempt may last, which the worker caps by the
-- instance's EXECUTION_TIMEOUT_SECONDS (NULL — inline `/test` runs and runs queued
-- before this — means the instance's limit alone), and whether a run that succeeds
-- keeps its steps.
ALTER TABLE executions
  ADD COLUMN timeout_seconds integer
    CONSTRAINT executions_timeout_seconds_positive CHECK (timeout_seconds > 0),
  ADD COLUMN save_successful_steps boolean NOT NULL DEFAULT true;
