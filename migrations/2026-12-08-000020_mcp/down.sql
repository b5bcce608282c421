DROP TABLE mcp_sessions;

DELETE FROM executions WHERE trigger_kind = 'mcp';
ALTER TABLE executions DROP CONSTRAINT executions_trigger_kind_check;
ALTER TABLE executions ADD CONSTRAINT executions_trigger_kind_check
    CHECK (trigger_kind IN ('test', 'run', 'retry', 'webhook', 'schedule'));
