-- One ~1 KB row (1,000 bytes of payload: below the TOAST threshold, stored inline and
-- uncompressed) per transaction. Run by `cargo xtask bench` as
-- pgbench -n -M prepared -c 64 -j 2 -T 12 -f xtask/pgbench/insert_1k.sql
INSERT INTO reference_rows (payload) VALUES (repeat('x', 1000));
