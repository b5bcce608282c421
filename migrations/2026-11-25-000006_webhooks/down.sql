DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE webhook_dedupe_keys;
DROP TABLE webhook_events;
DROP TABLE webhook_registrations;
