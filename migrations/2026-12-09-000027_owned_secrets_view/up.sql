-- The vault entries features own (secret providers' credentials, the SSO client secret,
-- the LDAP bind password) are not the user's credentials: the credentials API neither
-- lists nor changes them, as for webhook, alert and environment secrets.
CREATE OR REPLACE VIEW user_credentials AS
SELECT c.*
FROM credentials c
WHERE NOT EXISTS (SELECT 1 FROM webhook_registrations r WHERE r.signing_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_usage_alerts u WHERE u.secret_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM environment_variables v WHERE v.secret_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_secret_providers p WHERE p.credentials_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_sso_configs s WHERE s.client_secret_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_ldap_configs l WHERE l.bind_password_id = c.id);
