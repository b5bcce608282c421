-- Foundation: tenants, access control, plans, users, membership and the activity log.

CREATE TABLE workspaces (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 120),
    slug        text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz,
    CONSTRAINT workspaces_slug_key UNIQUE (slug)
);

-- The four roles. Seeded; members point at one.
CREATE TABLE profiles (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code        text NOT NULL,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT profiles_code_key UNIQUE (code)
);

-- Permission codes (`workflows.read`, ...). Seeded.
CREATE TABLE permissions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT permissions_code_key UNIQUE (code)
);

CREATE TABLE profile_permissions (
    profile_id    uuid NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    permission_id uuid NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    PRIMARY KEY (profile_id, permission_id)
);
CREATE INDEX profile_permissions_permission_idx ON profile_permissions (permission_id);

-- Plans with their limits (jsonb, typed in the workspace domain). Seeded.
CREATE TABLE plans (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code                text NOT NULL,
    name                text NOT NULL,
    monthly_price_cents integer NOT NULL DEFAULT 0 CHECK (monthly_price_cents >= 0),
    limits              jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_active           boolean NOT NULL DEFAULT true,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT plans_code_key UNIQUE (code)
);

CREATE TABLE users (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email                text NOT NULL CHECK (email = lower(email) AND position('@' in email) > 1),
    password_hash        text NOT NULL,
    display_name         text NOT NULL CHECK (length(btrim(display_name)) BETWEEN 1 AND 120),
    default_workspace_id uuid REFERENCES workspaces (id) ON DELETE SET NULL,
    email_verified_at    timestamptz,
    last_login_at        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
-- Case-insensitive uniqueness (emails are also stored lower-cased).
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_default_workspace_idx ON users (default_workspace_id);

CREATE TABLE workspace_members (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    profile_id   uuid NOT NULL REFERENCES profiles (id),
    invited_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_user_idx ON workspace_members (user_id);
CREATE INDEX workspace_members_profile_idx ON workspace_members (profile_id);

-- The audit trail: who (a user or an API key) did what to which target.
CREATE TABLE activities (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    actor_user_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    actor_api_key_id uuid,
    action           text NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
    target_type      text,
    target_id        text,
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip_address       inet,
    user_agent       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activities_workspace_created_idx ON activities (workspace_id, created_at DESC, id DESC);
CREATE INDEX activities_actor_user_idx ON activities (actor_user_id) WHERE actor_user_id IS NOT NULL;
