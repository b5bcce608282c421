-- The reference for writes (cargo xtask bench executions | webhooks): created in a
-- scratch database, then insert_1k.sql is run by pgbench. One ~1 KB row per transaction,
-- committed on its own, as a delivery or a finished execution is.
CREATE TABLE reference_rows (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    payload text NOT NULL
);
