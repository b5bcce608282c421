DROP INDEX executions_lease_idx;
CREATE INDEX executions_lease_idx ON executions (locked_until) WHERE status = 'running';
