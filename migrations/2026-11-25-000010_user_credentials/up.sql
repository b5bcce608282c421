-- The credentials a workspace manages itself: every vault entry except the secrets
-- other features own (webhook signing secrets, usage-alert secrets). Plan limits,
-- usage, snapshots, alerts and the overview all count these, from this one definition.
CREATE VIEW user_credentials AS
SELECT c.*
FROM credentials c
WHERE NOT EXISTS (SELECT 1 FROM webhook_registrations r WHERE r.signing_credential_id = c.id)
  AND NOT EXISTS (SELECT 1 FROM workspace_usage_alerts u WHERE u.secret_credential_id = c.id);
