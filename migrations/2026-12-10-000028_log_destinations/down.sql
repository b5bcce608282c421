CREATE OR REPLACE VIEW user_credentials AS
SELECT c.*
FROM credentials c
WHERE NOT EXISTS (SELECT 1 FROM webhook_registrations r WHERE r.signing_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_usage_alerts u WHERE u.secret_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM environment_variables v WHERE v.secret_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_secret_providers p WHERE p.credentials_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_sso_configs s WHERE s.client_secret_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_ldap_configs l WHERE l.bind_password_id = c.id);
DROP TRIGGER executions_log_event_on_insert ON executions;
DROP TRIGGER executions_log_event_on_finish ON executions;
DROP FUNCTION log_event_of_execution();
DROP TRIGGER webhook_events_log_events ON webhook_events;
DROP FUNCTION log_events_of_webhook_events();
DROP TRIGGER api_key_audit_log_events ON workspace_api_key_audit;
DROP FUNCTION log_events_of_api_key_audit();
DROP TRIGGER activities_log_events ON activities;
DROP FUNCTION log_events_of_activities();
DELETE FROM outbox WHERE kind = 'log_event';
DELETE FROM outbox_destinations WHERE destination LIKE 'log:%';
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check,
  ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('usage_alert'));
DROP TABLE log_destination_deliveries;
DROP TABLE log_destinations;
