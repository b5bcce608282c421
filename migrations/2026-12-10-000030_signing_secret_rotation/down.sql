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
                                 d.previous_secret_credential_id))
  AND NOT EXISTS (SELECT 1 FROM workspace_settings w WHERE w.failure_webhook_secret_id = c.id);

DELETE FROM credentials c USING workspace_usage_alerts u WHERE u.previous_secret_credential_id = c.id;
DELETE FROM credentials c USING workspace_settings w WHERE w.failure_webhook_previous_secret_id = c.id;
ALTER TABLE workspace_settings
  DROP COLUMN failure_webhook_previous_secret_expires_at,
  DROP COLUMN failure_webhook_previous_secret_id;
ALTER TABLE workspace_usage_alerts
  DROP COLUMN previous_secret_expires_at,
  DROP COLUMN previous_secret_credential_id;
