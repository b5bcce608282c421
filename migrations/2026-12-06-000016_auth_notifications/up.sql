-- Who may do what is cached by every server process (memberships with their grants,
-- API keys by lookup prefix). Each change of it announces itself on the channel
-- `fluxolab_auth`, from a trigger, so that every way of changing it — the API, a
-- cascade from a deleted user or workspace, the seed, an operator's SQL — is announced,
-- and only when its transaction commits (NOTIFY is transactional: a rolled-back change
-- announces nothing). The processes evict what a payload names
-- (`fluxolab_postgres::auth_cache`):
--   member:<workspace id>:<user id>   a membership was added, changed or removed
--   workspace:<workspace id>          a workspace was archived or restored
--   api_key:<lookup prefix>           a key was created, changed (but for its last use) or deleted
--   all                               roles' grants changed: everything goes

CREATE FUNCTION fluxolab_auth_member_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('fluxolab_auth', 'member:' || OLD.workspace_id || ':' || OLD.user_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('fluxolab_auth', 'member:' || NEW.workspace_id || ':' || NEW.user_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER workspace_members_auth_changed
    AFTER INSERT OR UPDATE OR DELETE ON workspace_members
    FOR EACH ROW EXECUTE FUNCTION fluxolab_auth_member_changed();

CREATE FUNCTION fluxolab_auth_workspace_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fluxolab_auth', 'workspace:' || NEW.id);
    RETURN NULL;
END $$;

-- Deleting a workspace deletes its memberships and keys, which announce themselves.
CREATE TRIGGER workspaces_auth_changed
    AFTER UPDATE OF archived_at ON workspaces
    FOR EACH ROW WHEN (OLD.archived_at IS DISTINCT FROM NEW.archived_at)
    EXECUTE FUNCTION fluxolab_auth_workspace_changed();

-- Both prefixes of the key before and after the change: a rotation moves the current
-- one to `previous_prefix`.
CREATE FUNCTION fluxolab_auth_api_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prefix text;
BEGIN
    FOR prefix IN
        SELECT DISTINCT p FROM unnest(CASE TG_OP
            WHEN 'INSERT' THEN ARRAY[NEW.prefix, NEW.previous_prefix]
            WHEN 'DELETE' THEN ARRAY[OLD.prefix, OLD.previous_prefix]
            ELSE ARRAY[OLD.prefix, OLD.previous_prefix, NEW.prefix, NEW.previous_prefix]
        END) AS p WHERE p IS NOT NULL
    LOOP
        PERFORM pg_notify('fluxolab_auth', 'api_key:' || prefix);
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER workspace_api_keys_auth_created_or_deleted
    AFTER INSERT OR DELETE ON workspace_api_keys
    FOR EACH ROW EXECUTE FUNCTION fluxolab_auth_api_key_changed();

-- Recording a use (`last_used_at`, at most once a minute per key) changes nothing a
-- cache holds, so it announces nothing; any other column does.
CREATE TRIGGER workspace_api_keys_auth_changed
    AFTER UPDATE ON workspace_api_keys
    FOR EACH ROW WHEN ((to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at'))
    EXECUTE FUNCTION fluxolab_auth_api_key_changed();

CREATE FUNCTION fluxolab_auth_grants_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fluxolab_auth', 'all');
    RETURN NULL;
END $$;

-- The seed upserts every role and permission at each migration: only a real change of
-- a grant or of a code announces.
CREATE TRIGGER profile_permissions_auth_changed
    AFTER INSERT OR UPDATE OR DELETE ON profile_permissions
    FOR EACH ROW EXECUTE FUNCTION fluxolab_auth_grants_changed();
CREATE TRIGGER profiles_auth_changed
    AFTER UPDATE OF code ON profiles
    FOR EACH ROW WHEN (OLD.code IS DISTINCT FROM NEW.code)
    EXECUTE FUNCTION fluxolab_auth_grants_changed();
CREATE TRIGGER permissions_auth_changed
    AFTER UPDATE OF code ON permissions
    FOR EACH ROW WHEN (OLD.code IS DISTINCT FROM NEW.code)
    EXECUTE FUNCTION fluxolab_auth_grants_changed();

-- TRUNCATE fires no row trigger.
CREATE TRIGGER workspace_members_auth_truncated
    AFTER TRUNCATE ON workspace_members
    FOR EACH STATEMENT EXECUTE FUNCTION fluxolab_auth_grants_changed();
CREATE TRIGGER workspace_api_keys_auth_truncated
    AFTER TRUNCATE ON workspace_api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION fluxolab_auth_grants_changed();
CREATE TRIGGER profile_permissions_auth_truncated
    AFTER TRUNCATE ON profile_permissions
    FOR EACH STATEMENT EXECUTE FUNCTION fluxolab_auth_grants_changed();
