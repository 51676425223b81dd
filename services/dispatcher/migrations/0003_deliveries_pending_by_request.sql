-- The pending-rows index also carries request_id. Every outcome is written
-- with "WHERE request_id = $1 AND owner = $2 AND status pending", and with
-- the index on owner alone the planner could pick it and walk every pending
-- row of the replica for each update (quadratic at 2,000 sends/s). With
-- (owner, request_id) that lookup is exact, and recovery and takeover still
-- find a replica's rows by the owner prefix.
DROP INDEX deliveries_pending;
CREATE INDEX deliveries_pending ON deliveries (owner, request_id)
    WHERE status IN ('queued', 'retrying');
