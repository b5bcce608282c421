-- OpenID Connect single sign-on: one provider per workspace (its client secret sealed
-- in the vault as an owned secret), the pending logins (state, nonce and PKCE verifier,
-- single use, 10 minutes), the one-use tickets a finished login hands to the browser
-- (60 seconds), and how each session was opened, so `enforce_sso` can tell a password
-- login from an SSO one across refreshes.

CREATE TABLE workspace_sso_configs (
    id               uuid PRIMARY KEY,
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    issuer           text NOT NULL,
    client_id        text NOT NULL,
    -- The vault entry holding the client secret (an owned secret).
    client_secret_id uuid NOT NULL REFERENCES credentials (id),
    scopes           jsonb NOT NULL,
    allowed_domains  jsonb NOT NULL DEFAULT '[]'::jsonb,
    groups_claim     text NOT NULL,
    role_mapping     jsonb NOT NULL DEFAULT '{}'::jsonb,
    default_role     text NOT NULL CHECK (default_role IN ('viewer', 'editor', 'admin')),
    jit_provisioning boolean NOT NULL,
    enforce_sso      boolean NOT NULL,
    enabled          boolean NOT NULL,
    created_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workspace_sso_configs_workspace_key UNIQUE (workspace_id)
);

CREATE TABLE sso_login_states (
    -- SHA-256 of the `state` sent to the provider.
    state_hash    bytea PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    nonce         text NOT NULL,
    code_verifier text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    -- Set by the callback: kept until expiry, so a replay is told apart (and recorded).
    used_at       timestamptz
);
CREATE INDEX sso_login_states_workspace_idx ON sso_login_states (workspace_id, expires_at);

CREATE TABLE sso_tickets (
    -- SHA-256 of the ticket handed to the browser.
    ticket_hash  bytea PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sso_tickets_workspace_idx ON sso_tickets (workspace_id, expires_at);

ALTER TABLE sessions ADD COLUMN auth_method text NOT NULL DEFAULT 'password'
    CHECK (auth_method IN ('password', 'sso'));
