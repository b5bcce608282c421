DELETE FROM executions WHERE trigger_kind = 'schedule';
ALTER TABLE executions DROP CONSTRAINT executions_trigger_kind_check;
ALTER TABLE executions ADD CONSTRAINT executions_trigger_kind_check
    CHECK (trigger_kind IN ('test', 'run', 'retry', 'webhook'));
DROP TABLE IF EXISTS workflow_schedule_fires;
DROP TABLE IF EXISTS workflow_schedules;
