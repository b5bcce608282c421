-- The new work a claim takes (see crates/postgres/src/claims.rs), fairly between
-- workspaces and with plans that do not depend on the table's statistics.
--
-- Each workspace with due work (found by a skip scan over executions_workspace_due_idx,
-- one probe per workspace, at most `how_many` workspaces) gets an equal share of the
-- claim, its oldest runs first; `rank` is a run's place in its workspace's share, so a
-- claim cut short takes every workspace's first run before anyone's second. Then the
-- oldest due runs of anyone fill what the shares left (`rank` null).
--
-- A function so that it can be planned with bitmap scans off: right after a burst of
-- runs is queued, the statistics (autovacuum analyses at most once a minute) still say
-- few runs are queued, and PostgreSQL then plans "the oldest 64 due runs" as a bitmap
-- scan of every due run and a sort (37 ms with 50,000 queued) instead of an ordered scan
-- of the due index that stops after 64 (under 1 ms). Without bitmap scans the ordered
-- index scans are the cheapest plan whatever the statistics say.
CREATE FUNCTION claimable_runs(how_many integer)
RETURNS TABLE (id uuid, due_at timestamptz, started boolean, rank bigint)
LANGUAGE plpgsql VOLATILE
SET enable_bitmapscan = off
AS $$
DECLARE
  workspaces uuid[];
BEGIN
  WITH RECURSIVE waiting AS (
    (SELECT e.workspace_id FROM executions e WHERE e.status = 'queued' AND e.due_at <= now()
     ORDER BY e.workspace_id, e.due_at LIMIT 1)
    UNION ALL
    SELECT next.workspace_id FROM waiting w CROSS JOIN LATERAL (
      SELECT e.workspace_id FROM executions e
      WHERE e.status = 'queued' AND e.due_at <= now() AND e.workspace_id > w.workspace_id
      ORDER BY e.workspace_id, e.due_at LIMIT 1) next
  )
  SELECT array_agg(w.workspace_id) INTO workspaces
  FROM (SELECT waiting.workspace_id FROM waiting LIMIT how_many) w;
  IF workspaces IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY
  WITH fair AS (
    SELECT r.id, r.due_at, r.started,
      row_number() OVER (PARTITION BY r.workspace_id ORDER BY r.due_at) AS rank
    FROM unnest(workspaces) AS w(workspace_id) CROSS JOIN LATERAL (
      SELECT e.id, e.due_at, e.workspace_id, e.started_at IS NOT NULL AS started
      FROM executions e
      -- The workspace as a range, not an equality, and in the order: only
      -- executions_workspace_due_idx then gives this order. With an equality PostgreSQL
      -- drops the workspace from the order and its generic plan may walk
      -- executions_due_idx, filtering out every other workspace's runs (20,000 rows to
      -- find a quiet workspace's one).
      WHERE e.workspace_id >= w.workspace_id AND e.workspace_id <= w.workspace_id
        AND e.status = 'queued' AND e.due_at <= now()
      ORDER BY e.workspace_id, e.due_at LIMIT greatest(1, how_many / cardinality(workspaces))
      FOR UPDATE SKIP LOCKED) r
  ), fill AS (
    SELECT e.id, e.due_at, e.started_at IS NOT NULL AS started FROM executions e
    WHERE e.status = 'queued' AND e.due_at <= now() AND e.id NOT IN (SELECT f.id FROM fair f)
    ORDER BY e.due_at LIMIT greatest(0, how_many - (SELECT count(*) FROM fair))
    FOR UPDATE SKIP LOCKED
  )
  SELECT f.id, f.due_at, f.started, f.rank FROM fair f
  UNION ALL
  SELECT l.id, l.due_at, l.started, NULL::bigint FROM fill l;
END
$$;
