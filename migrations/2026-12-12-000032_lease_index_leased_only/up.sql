-- The lease index holds only runs that have a lease. Every query that reads it bounds
-- `locked_until` (the claim's expired and abandoned passes, oldest lease first), which
-- implies the new clause. A fenced write names its run by id and lease token and says
-- nothing of `locked_until`, so it can no longer be planned as a bitmap scan of this
-- index: such a scan visits in the heap every entry finished runs left behind (a
-- bitmap scan never skips entries marked dead) and grew with every run the queue had
-- drained since the last vacuum. It takes the primary key instead.
DROP INDEX executions_lease_idx;
CREATE INDEX executions_lease_idx ON executions (locked_until)
    WHERE status = 'running' AND locked_until IS NOT NULL;
