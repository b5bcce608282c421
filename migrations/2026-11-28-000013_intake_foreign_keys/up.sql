-- The webhook intake writes a dedupe key, an event, an execution and a message per
-- delivery, and PostgreSQL checks every foreign key of every row it writes. Five of
-- those checks repeat what another key already guarantees, through a cascade that
-- deletes the row anyway; they go. What still holds:
-- * a dedupe key belongs to its event (which belongs to the registration the key names):
--   deleting a registration deletes its events, and they their keys;
-- * an event belongs to its registration (which belongs to the event's workspace);
-- * an execution belongs to a version of its workflow (which belongs to the
--   execution's workspace): deleting a workflow deletes its versions, and they their
--   executions;
-- * a message belongs to its conversation (which belongs to the message's workspace).
ALTER TABLE webhook_dedupe_keys DROP CONSTRAINT webhook_dedupe_keys_registration_id_fkey;
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_workspace_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_workspace_id_fkey;
ALTER TABLE executions DROP CONSTRAINT executions_workspace_id_fkey;
ALTER TABLE executions DROP CONSTRAINT executions_workflow_id_fkey;
ALTER TABLE executions DROP CONSTRAINT executions_workflow_id_version_fkey;
ALTER TABLE executions ADD CONSTRAINT executions_workflow_id_version_fkey
    FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions (workflow_id, version) ON DELETE CASCADE;
