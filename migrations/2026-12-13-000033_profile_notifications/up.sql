-- Each server process also caches users as `GET /api/auth/me` shows them: the user's
-- e-mail, name and default workspace, and the names of the workspaces they belong to
-- (`fluxolab_postgres::auth_cache`). Memberships already announce themselves
-- (migration 16); these announce the rest on the same channel, when they commit:
--   user:<user id>         the user's e-mail, name or default workspace changed, or the
--                          user was deleted
--   workspace:<id>         the workspace was renamed (as for an archive: every
--                          membership and profile goes; renames are rare)

CREATE FUNCTION fluxolab_auth_user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fluxolab_auth', 'user:' || OLD.id);
    RETURN NULL;
END $$;

CREATE TRIGGER users_profile_changed
    AFTER UPDATE OF email, display_name, default_workspace_id ON users
    FOR EACH ROW WHEN (
        OLD.email IS DISTINCT FROM NEW.email
        OR OLD.display_name IS DISTINCT FROM NEW.display_name
        OR OLD.default_workspace_id IS DISTINCT FROM NEW.default_workspace_id)
    EXECUTE FUNCTION fluxolab_auth_user_changed();

CREATE TRIGGER users_profile_deleted
    AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION fluxolab_auth_user_changed();

CREATE TRIGGER workspaces_profile_renamed
    AFTER UPDATE OF name ON workspaces
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION fluxolab_auth_workspace_changed();
