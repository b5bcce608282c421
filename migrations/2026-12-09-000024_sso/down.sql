ALTER TABLE sessions DROP COLUMN auth_method;
DROP TABLE sso_tickets;
DROP TABLE sso_login_states;
DROP TABLE workspace_sso_configs;
