DROP TABLE workspace_usage_alert_events;
DROP TABLE workspace_usage_alerts;
