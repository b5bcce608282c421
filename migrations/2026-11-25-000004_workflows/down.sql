ALTER TABLE workflows DROP CONSTRAINT workflows_active_version_fkey;
DROP TABLE workflow_versions;
DROP TABLE workflows;
