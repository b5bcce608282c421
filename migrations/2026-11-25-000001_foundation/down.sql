DROP TABLE activities;
DROP TABLE workspace_members;
DROP TABLE users;
DROP TABLE plans;
DROP TABLE profile_permissions;
DROP TABLE permissions;
DROP TABLE profiles;
DROP TABLE workspaces;
