DROP TRIGGER workspaces_profile_renamed ON workspaces;
DROP TRIGGER users_profile_deleted ON users;
DROP TRIGGER users_profile_changed ON users;
DROP FUNCTION fluxolab_auth_user_changed();
