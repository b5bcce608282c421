DROP TABLE IF EXISTS workspace_ldap_members;
-- The sealed bind passwords go with their configurations.
WITH gone AS (DELETE FROM workspace_ldap_configs RETURNING bind_password_id)
DELETE FROM credentials WHERE id IN (SELECT bind_password_id FROM gone);
DROP TABLE IF EXISTS workspace_ldap_configs;
