DROP TABLE workspace_usage_snapshots;
DROP TABLE billing_events;
