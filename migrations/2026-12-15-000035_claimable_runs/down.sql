DROP FUNCTION IF EXISTS claimable_runs(integer);
