-- Standard Webhooks (standardwebhooks.com) as an intake provider.
ALTER TABLE webhook_registrations
  DROP CONSTRAINT webhook_registrations_provider_check,
  ADD CONSTRAINT webhook_registrations_provider_check
    CHECK (provider IN ('meta', 'hmac_sha256', 'standard', 'none'));
