-- Standard registrations cannot be checked without the provider: they are disabled
-- and keep their secret as an HMAC one.
UPDATE webhook_registrations SET provider = 'hmac_sha256', enabled = false WHERE provider = 'standard';
ALTER TABLE webhook_registrations
  DROP CONSTRAINT webhook_registrations_provider_check,
  ADD CONSTRAINT webhook_registrations_provider_check
    CHECK (provider IN ('meta', 'hmac_sha256', 'none'));
