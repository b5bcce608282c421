ALTER TABLE executions DROP CONSTRAINT executions_workflow_id_version_fkey;
ALTER TABLE executions ADD CONSTRAINT executions_workflow_id_version_fkey
    FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions (workflow_id, version);
ALTER TABLE executions ADD CONSTRAINT executions_workflow_id_fkey
    FOREIGN KEY (workflow_id) REFERENCES workflows (id) ON DELETE CASCADE;
ALTER TABLE executions ADD CONSTRAINT executions_workspace_id_fkey
    FOREIGN KEY (workspace_id) REFERENCES workspaces (id) ON DELETE CASCADE;
ALTER TABLE messages ADD CONSTRAINT messages_workspace_id_fkey
    FOREIGN KEY (workspace_id) REFERENCES workspaces (id) ON DELETE CASCADE;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_workspace_id_fkey
    FOREIGN KEY (workspace_id) REFERENCES workspaces (id) ON DELETE CASCADE;
ALTER TABLE webhook_dedupe_keys ADD CONSTRAINT webhook_dedupe_keys_registration_id_fkey
    FOREIGN KEY (registration_id) REFERENCES webhook_registrations (id) ON DELETE CASCADE;
