-- Every server process caches, per workspace, the names and ids its environments are
-- resolved by (`fluxolab_postgres::auth_cache::CachedEnvironments`: every run started
-- through the API resolves one). A change announces itself on `fluxolab_auth` like the
-- memberships and keys of migration 16, whichever way it is made:
--   environments:<workspace id>   an environment of that workspace was added, renamed,
--                                 made the default or deleted
--   all                           the table was truncated: everything goes
-- PostgreSQL sends one notification per transaction for identical payloads, so the
-- three environments of a new workspace announce it once.

CREATE FUNCTION fluxolab_auth_environment_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('fluxolab_auth', 'environments:' || OLD.workspace_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('fluxolab_auth', 'environments:' || NEW.workspace_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER workspace_environments_auth_changed
    AFTER INSERT OR UPDATE OF workspace_id, name, is_default OR DELETE ON workspace_environments
    FOR EACH ROW EXECUTE FUNCTION fluxolab_auth_environment_changed();

CREATE TRIGGER workspace_environments_auth_truncated
    AFTER TRUNCATE ON workspace_environments
    FOR EACH STATEMENT EXECUTE FUNCTION fluxolab_auth_grants_changed();
