-- Accounts and what a workspace is provisioned with: user settings and security state,
-- refresh-token sessions, subscriptions, workspace settings and environments.

CREATE TABLE user_settings (
    user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    locale        text NOT NULL DEFAULT 'en' CHECK (locale ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
    timezone      text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 64),
    theme         text NOT NULL DEFAULT 'system' CHECK (theme IN ('light', 'dark', 'system')),
    notifications jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Brute-force state and password history of one user.
CREATE TABLE user_security_settings (
    user_id               uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    failed_login_attempts integer NOT NULL DEFAULT 0 CHECK (failed_login_attempts >= 0),
    locked_until          timestamptz,
    password_changed_at   timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Refresh tokens: only their SHA-256 is stored. Every refresh rotates the token inside
-- its family; presenting a rotated token revokes the whole family.
CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id      uuid NOT NULL,
    token_hash     bytea NOT NULL,
    workspace_id   uuid REFERENCES workspaces (id) ON DELETE SET NULL,
    user_agent     text,
    ip_address     inet,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    rotated_at     timestamptz,
    revoked_at     timestamptz,
    revoked_reason text,
    CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at DESC);
CREATE INDEX sessions_family_idx ON sessions (family_id);

CREATE TABLE subscriptions (
    id                   uuid PRIMARY KEY,
    workspace_id         uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    plan_id              uuid NOT NULL REFERENCES plans (id),
    status               text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'past_due', 'canceled')),
    current_period_start timestamptz NOT NULL,
    current_period_end   timestamptz NOT NULL CHECK (current_period_end > current_period_start),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subscriptions_workspace_key UNIQUE (workspace_id)
);
CREATE INDEX subscriptions_plan_idx ON subscriptions (plan_id);

CREATE TABLE workspace_settings (
    workspace_id           uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    timezone               text NOT NULL DEFAULT 'UTC',
    locale                 text NOT NULL DEFAULT 'en',
    allow_internal_network boolean NOT NULL DEFAULT false,
    settings               jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workspace_environments (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_-]{0,39}$'),
    description  text NOT NULL DEFAULT '',
    variables    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workspace_environments_name_key UNIQUE (workspace_id, name)
);

-- Workspaces that predate this migration get what provisioning now creates.
INSERT INTO workspace_settings (workspace_id) SELECT id FROM workspaces;
INSERT INTO workspace_environments (id, workspace_id, name)
SELECT gen_random_uuid(), w.id, e.name
FROM workspaces w CROSS JOIN (VALUES ('development'), ('staging'), ('production')) AS e (name);
INSERT INTO subscriptions (id, workspace_id, plan_id, current_period_start, current_period_end)
SELECT gen_random_uuid(), w.id, p.id, date_trunc('month', now()), date_trunc('month', now()) + interval '1 month'
FROM workspaces w JOIN plans p ON p.code = 'free';
INSERT INTO user_settings (user_id) SELECT id FROM users;
INSERT INTO user_security_settings (user_id) SELECT id FROM users;
