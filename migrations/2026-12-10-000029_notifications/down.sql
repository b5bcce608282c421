CREATE OR REPLACE VIEW user_credentials AS
SELECT c.*
FROM credentials c
WHERE NOT EXISTS (SELECT 1 FROM webhook_registrations r WHERE r.signing_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_usage_alerts u WHERE u.secret_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM environment_variables v WHERE v.secret_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_secret_providers p WHERE p.credentials_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_sso_configs s WHERE s.client_secret_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_ldap_configs l WHERE l.bind_password_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM log_destinations d
                  WHERE c.id IN (d.secret_headers_credential_id, d.signing_secret_credential_id,
                                 d.previous_secret_credential_id));

DROP TABLE weekly_usage_reports;
DROP TABLE execution_failure_notices;

-- The failure webhooks' secrets go with the column that owned them.
DELETE FROM credentials c USING workspace_settings w WHERE w.failure_webhook_secret_id = c.id;
DROP INDEX workspace_settings_failure_webhook_secret_idx;
ALTER TABLE workspace_settings DROP COLUMN failure_webhook_secret_id;

DELETE FROM outbox WHERE kind = 'notification';
DELETE FROM outbox_destinations
WHERE destination LIKE 'execution_failed:%' OR destination LIKE 'weekly_usage_report:%';
ALTER TABLE outbox
  DROP CONSTRAINT outbox_kind_check,
  ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('usage_alert', 'log_event'));
