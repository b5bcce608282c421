-- Alert firings still in the outbox get their own retry clock back (due now).
ALTER TABLE workspace_usage_alert_events ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX workspace_usage_alert_events_due_idx ON workspace_usage_alert_events (next_attempt_at) WHERE status = 'pending';
DROP TABLE outbox;
DROP TABLE outbox_destinations;

-- Standard registrations cannot be checked without the provider: they are disabled
-- and keep their secret as an HMAC one.
UPDATE webhook_registrations SET provider = 'hmac_sha256', enabled = false WHERE provider = 'standard';
ALTER TABLE webhook_registrations
  DROP CONSTRAINT webhook_registrations_provider_check,
  ADD CONSTRAINT webhook_registrations_provider_check
    CHECK (provider IN ('meta', 'hmac_sha256', 'none'));
