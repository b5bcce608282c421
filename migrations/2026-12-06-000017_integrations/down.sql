DELETE FROM environment_variables WHERE secret_ref IS NOT NULL;
DROP INDEX environment_variables_secret_ref_provider_idx;
ALTER TABLE environment_variables DROP CONSTRAINT environment_variables_one_value;
ALTER TABLE environment_variables DROP COLUMN secret_ref;
ALTER TABLE environment_variables ADD CONSTRAINT environment_variables_check
    CHECK ((value IS NULL) <> (secret_credential_id IS NULL));
DROP TABLE workspace_secret_providers;
DROP TABLE workspace_integration_events;
