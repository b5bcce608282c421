DROP TABLE credentials;
DROP TABLE workspace_data_keys;
