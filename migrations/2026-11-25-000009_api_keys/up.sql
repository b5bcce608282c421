-- API keys: `flx_…` secrets shown once, stored as SHA-256 with a short prefix for
-- lookup; rotation keeps the previous secret valid for a grace period. Every change is
-- in the keys' own audit table (and the activity log).

CREATE TABLE workspace_api_keys (
    id                   uuid PRIMARY KEY,
    workspace_id         uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                 text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 120),
    -- `flx_` and the first characters of the secret: how a presented key is found.
    prefix               text NOT NULL UNIQUE,
    last_four            text NOT NULL,
    secret_hash          bytea NOT NULL,
    scopes               text[] NOT NULL,
    environment          text,
    created_by           uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    expires_at           timestamptz,
    last_used_at         timestamptz,
    revoked_at           timestamptz,
    -- The secret a rotation replaced, valid until `previous_valid_until`.
    previous_prefix      text UNIQUE,
    previous_hash        bytea,
    previous_valid_until timestamptz
);
CREATE INDEX workspace_api_keys_workspace_idx ON workspace_api_keys (workspace_id, created_at DESC, id DESC);

CREATE TABLE workspace_api_key_audit (
    id            uuid PRIMARY KEY,
    key_id        uuid NOT NULL REFERENCES workspace_api_keys (id) ON DELETE CASCADE,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    action        text NOT NULL,
    actor_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    ip_address    text,
    user_agent    text,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspace_api_key_audit_key_idx ON workspace_api_key_audit (key_id, created_at DESC, id DESC);
