-- LDAP directory logins (#20): one configuration per workspace, its bind password sealed
-- in the vault as an owned secret; and the members an LDAP login brought in, with the
-- role their groups mapped to, which the directory sync keeps up to date.

CREATE TABLE workspace_ldap_configs (
    workspace_id          uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    url                   text NOT NULL CHECK (url ~ '^ldaps?://'),
    start_tls             boolean NOT NULL DEFAULT false,
    bind_dn               text NOT NULL,
    -- The vault entry holding the service account's password (an owned secret).
    bind_password_id      uuid NOT NULL REFERENCES credentials (id),
    base_dn               text NOT NULL,
    user_filter           text NOT NULL,
    email_attribute       text NOT NULL,
    name_attribute        text NOT NULL,
    group_base_dn         text,
    group_filter          text NOT NULL,
    -- {group_dn: role}
    role_mapping          jsonb NOT NULL DEFAULT '{}'::jsonb,
    default_role          text NOT NULL CHECK (default_role IN ('admin', 'editor', 'viewer')),
    sync_interval_minutes integer NOT NULL DEFAULT 0 CHECK (sync_interval_minutes BETWEEN 0 AND 10080),
    enabled               boolean NOT NULL DEFAULT true,
    -- The latest sync: when it ended and what it did ({role_changes, removed, errors}).
    last_sync_at          timestamptz,
    last_sync_result      jsonb,
    -- A worker syncing this workspace holds it until then (periodic syncs skip it).
    sync_claimed_until    timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspace_ldap_configs_due_idx
    ON workspace_ldap_configs (last_sync_at) WHERE enabled AND sync_interval_minutes > 0;

CREATE TABLE workspace_ldap_members (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The name the user logs in with, looked up again by the sync.
    username     text NOT NULL,
    dn           text NOT NULL,
    -- The role the user's groups mapped to at the latest login or sync.
    mapped_role  text NOT NULL CHECK (mapped_role IN ('admin', 'editor', 'viewer')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, user_id)
);
