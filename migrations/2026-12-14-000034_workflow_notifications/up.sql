-- Each server process also caches workflows as `GET /api/workflows/{id}` shows them and
-- as every run started through the API resolves them: the row, its deployments (with
-- their environments' names) and its latest version number
-- (`fluxolab_postgres::auth_cache::CachedWorkflows`). Every change of those announces
-- itself on the auth channel, when it commits, whichever way it is made:
--   workflow:<workflow id>   the workflow was renamed, re-described, archived, given an
--                            error workflow or deleted; a version was added; it was
--                            activated, deactivated or promoted in an environment
--   all                      one of the tables was truncated: everything goes
-- Environments renamed or made the default already announce `environments:<workspace>`
-- (migration 31), which drops the cached workflows too. A new workflow announces
-- nothing: only workflows found are kept.

CREATE FUNCTION fluxolab_auth_workflow_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'workflows' THEN
        PERFORM pg_notify('fluxolab_auth', 'workflow:' || OLD.id);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('fluxolab_auth', 'workflow:' || OLD.workflow_id);
    ELSE
        PERFORM pg_notify('fluxolab_auth', 'workflow:' || NEW.workflow_id);
        IF TG_OP = 'UPDATE' AND OLD.workflow_id <> NEW.workflow_id THEN
            PERFORM pg_notify('fluxolab_auth', 'workflow:' || OLD.workflow_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER workflows_auth_changed
    AFTER UPDATE OR DELETE ON workflows
    FOR EACH ROW EXECUTE FUNCTION fluxolab_auth_workflow_changed();

CREATE TRIGGER workflow_versions_auth_changed
    AFTER INSERT OR UPDATE OR DELETE ON workflow_versions
    FOR EACH ROW EXECUTE FUNCTION fluxolab_auth_workflow_changed();

CREATE TRIGGER workflow_deployments_auth_changed
    AFTER INSERT OR UPDATE OR DELETE ON workflow_deployments
    FOR EACH ROW EXECUTE FUNCTION fluxolab_auth_workflow_changed();

CREATE TRIGGER workflows_auth_truncated
    AFTER TRUNCATE ON workflows
    FOR EACH STATEMENT EXECUTE FUNCTION fluxolab_auth_grants_changed();

CREATE TRIGGER workflow_versions_auth_truncated
    AFTER TRUNCATE ON workflow_versions
    FOR EACH STATEMENT EXECUTE FUNCTION fluxolab_auth_grants_changed();

CREATE TRIGGER workflow_deployments_auth_truncated
    AFTER TRUNCATE ON workflow_deployments
    FOR EACH STATEMENT EXECUTE FUNCTION fluxolab_auth_grants_changed();
