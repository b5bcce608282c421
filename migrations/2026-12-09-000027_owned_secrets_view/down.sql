CREATE OR REPLACE VIEW user_credentials AS
SELECT c.*
FROM credentials c
WHERE NOT EXISTS (SELECT 1 FROM webhook_registrations r WHERE r.signing_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_usage_alerts u WHERE u.secret_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM environment_variables v WHERE v.secret_credential_id = c.id);
