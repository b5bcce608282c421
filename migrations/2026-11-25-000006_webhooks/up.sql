-- Webhook registrations and the events they received; WhatsApp conversations and messages.

CREATE TABLE webhook_registrations (
    id                    uuid PRIMARY KEY,
    workspace_id          uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                  text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 120),
    provider              text NOT NULL CHECK (provider IN ('meta', 'hmac_sha256', 'none')),
    -- The unguessable part of the intake URL.
    public_id             text NOT NULL UNIQUE,
    -- SHA-256 (hex) of the handshake verify token; the token itself is not kept.
    verify_token_hash     text,
    -- The signing secret, sealed in the vault like every other secret.
    signing_credential_id uuid REFERENCES credentials (id) ON DELETE SET NULL,
    workflow_id           uuid REFERENCES workflows (id) ON DELETE SET NULL,
    -- The workflow it was bound to before its deactivation unbound it (rebound when
    -- that workflow is activated again).
    last_workflow_id      uuid REFERENCES workflows (id) ON DELETE SET NULL,
    response_mode         text NOT NULL DEFAULT 'immediate' CHECK (response_mode IN ('immediate', 'respond_node')),
    enabled               boolean NOT NULL DEFAULT true,
    created_by            uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_registrations_workspace_idx ON webhook_registrations (workspace_id, created_at DESC, id DESC);
CREATE INDEX webhook_registrations_workflow_idx ON webhook_registrations (workflow_id) WHERE workflow_id IS NOT NULL;

CREATE TABLE webhook_events (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    registration_id uuid NOT NULL REFERENCES webhook_registrations (id) ON DELETE CASCADE,
    verdict         text NOT NULL CHECK (verdict IN ('accepted', 'duplicate', 'rejected', 'quota_exceeded')),
    reason          text,
    -- SHA-256 (hex) of the raw body.
    body_digest     text NOT NULL,
    headers         jsonb NOT NULL DEFAULT '{}'::jsonb,
    body            bytea NOT NULL,
    -- The body parsed, when it is JSON.
    payload         jsonb,
    execution_id    uuid REFERENCES executions (id) ON DELETE SET NULL,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_workspace_idx ON webhook_events (workspace_id, received_at DESC, id DESC);
CREATE INDEX webhook_events_registration_idx ON webhook_events (registration_id, received_at DESC, id DESC);

-- What makes a delivery a repeat: its body digest and each WhatsApp message id in it.
CREATE TABLE webhook_dedupe_keys (
    registration_id uuid NOT NULL REFERENCES webhook_registrations (id) ON DELETE CASCADE,
    key             text NOT NULL,
    event_id        uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    PRIMARY KEY (registration_id, key)
);
CREATE INDEX webhook_dedupe_keys_event_idx ON webhook_dedupe_keys (event_id);

CREATE TABLE conversations (
    id                   uuid PRIMARY KEY,
    workspace_id         uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    wa_id                text NOT NULL,
    name                 text,
    phone_number_id      text,
    status               text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    message_count        integer NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    unread_count         integer NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    last_message_at      timestamptz,
    last_message_preview text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT conversations_contact_key UNIQUE (workspace_id, wa_id)
);
CREATE INDEX conversations_recent_idx ON conversations (workspace_id, last_message_at DESC NULLS LAST, id DESC);

CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- WhatsApp's message id (wamid…).
    message_id      text NOT NULL,
    direction       text NOT NULL DEFAULT 'inbound' CHECK (direction IN ('inbound', 'outbound')),
    message_type    text NOT NULL,
    body            text,
    payload         jsonb NOT NULL,
    status          text,
    sent_at         timestamptz NOT NULL,
    event_id        uuid REFERENCES webhook_events (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_message_key UNIQUE (workspace_id, message_id)
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, sent_at DESC, id DESC);
