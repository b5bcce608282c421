-- An API key is bound to its environment by id, so renaming the environment keeps the
-- key working (it stored the environment's name before).

ALTER TABLE workspace_api_keys
    ADD COLUMN environment_id uuid REFERENCES workspace_environments (id);

UPDATE workspace_api_keys k SET environment_id = e.id
FROM workspace_environments e
WHERE e.workspace_id = k.workspace_id AND e.name = k.environment;

ALTER TABLE workspace_api_keys DROP COLUMN environment;

CREATE INDEX workspace_api_keys_environment_idx ON workspace_api_keys (environment_id)
    WHERE environment_id IS NOT NULL;
