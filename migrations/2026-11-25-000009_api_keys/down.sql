DROP TABLE workspace_api_key_audit;
DROP TABLE workspace_api_keys;
