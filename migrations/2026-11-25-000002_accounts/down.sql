DROP TABLE workspace_environments;
DROP TABLE workspace_settings;
DROP TABLE subscriptions;
DROP TABLE sessions;
DROP TABLE user_security_settings;
DROP TABLE user_settings;
