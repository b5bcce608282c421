ALTER TABLE workspace_api_keys ADD COLUMN environment text;

UPDATE workspace_api_keys k SET environment = e.name
FROM workspace_environments e
WHERE e.id = k.environment_id;

DROP INDEX workspace_api_keys_environment_idx;
ALTER TABLE workspace_api_keys DROP COLUMN environment_id;
