-- Integrations: what happened to each (configured, tested, failed a delivery…), written
-- by every integration feature in the same transaction as the change; and the external
-- secret providers, whose credentials are sealed in the vault as owned secrets.

CREATE TABLE workspace_integration_events (
    id               uuid PRIMARY KEY,
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('webhooks', 'secret_providers', 'sso', 'ldap', 'log_destinations', 'connectors')),
    integration_id   uuid,
    event            text NOT NULL CHECK (event IN ('configured', 'updated', 'enabled', 'disabled', 'removed', 'tested', 'test_failed', 'delivery_failed')),
    details          jsonb NOT NULL DEFAULT '{}'::jsonb,
    actor_user_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    actor_api_key_id uuid,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspace_integration_events_created_idx
    ON workspace_integration_events (workspace_id, created_at DESC, id DESC);
CREATE INDEX workspace_integration_events_kind_idx
    ON workspace_integration_events (workspace_id, kind, created_at DESC, id DESC);

CREATE TABLE workspace_secret_providers (
    id                uuid PRIMARY KEY,
    workspace_id      uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name              text NOT NULL CHECK (name ~ '^[a-z0-9-]{1,40}$'),
    kind              text NOT NULL CHECK (kind IN ('aws_secrets_manager', 'vault')),
    config            jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The vault entry holding the provider's credentials (an owned secret).
    credentials_id    uuid NOT NULL REFERENCES credentials (id),
    enabled           boolean NOT NULL DEFAULT true,
    cache_ttl_seconds integer NOT NULL DEFAULT 60 CHECK (cache_ttl_seconds BETWEEN 0 AND 86400),
    -- Bumped on every change of config or credentials: caches keyed by it go stale.
    revision          bigint NOT NULL DEFAULT 1,
    created_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workspace_secret_providers_name_key UNIQUE (workspace_id, name)
);
CREATE INDEX workspace_secret_providers_workspace_idx
    ON workspace_secret_providers (workspace_id, created_at, id);

-- An environment variable may name a secret in an external provider instead of
-- holding a value: resolved at run time only.
ALTER TABLE environment_variables ADD COLUMN secret_ref jsonb;
ALTER TABLE environment_variables DROP CONSTRAINT environment_variables_check;
ALTER TABLE environment_variables ADD CONSTRAINT environment_variables_one_value
    CHECK (num_nonnulls(value, secret_credential_id, secret_ref) = 1);
CREATE INDEX environment_variables_secret_ref_provider_idx
    ON environment_variables (workspace_id, (secret_ref ->> 'provider')) WHERE secret_ref IS NOT NULL;
