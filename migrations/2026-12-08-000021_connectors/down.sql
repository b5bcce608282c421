DROP TABLE workspace_connectors;
