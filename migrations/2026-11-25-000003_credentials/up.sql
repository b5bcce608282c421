-- The credentials vault: per-workspace data keys (stored only wrapped by a key derived
-- from APP_SECRET) and credentials whose secret fields are sealed under them.

CREATE TABLE workspace_data_keys (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    version      integer NOT NULL CHECK (version >= 1),
    wrapped_key  bytea NOT NULL,
    kek_id       text NOT NULL,
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz,
    CONSTRAINT workspace_data_keys_version_key UNIQUE (workspace_id, version)
);
-- At most one active key per workspace.
CREATE UNIQUE INDEX workspace_data_keys_active_key ON workspace_data_keys (workspace_id) WHERE active;
CREATE INDEX workspace_data_keys_kek_idx ON workspace_data_keys (kek_id);

CREATE TABLE credentials (
    id                uuid PRIMARY KEY,
    workspace_id      uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name              text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 120),
    kind              text NOT NULL CHECK (kind IN ('smtp', 'http_basic', 'http_header', 'bearer_token', 'meta_app', 'generic')),
    public_data       jsonb NOT NULL DEFAULT '{}'::jsonb,
    secret_nonce      bytea NOT NULL,
    secret_ciphertext bytea NOT NULL,
    data_key_id       uuid NOT NULL REFERENCES workspace_data_keys (id),
    masked_hints      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT credentials_name_key UNIQUE (workspace_id, name)
);
CREATE INDEX credentials_workspace_created_idx ON credentials (workspace_id, created_at, id);
CREATE INDEX credentials_data_key_idx ON credentials (data_key_id);
