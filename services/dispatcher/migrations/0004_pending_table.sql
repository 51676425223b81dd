-- Which replica holds a pending delivery moves out of `deliveries` into a
-- small table of its own (decision 0005). A row is pending while it has a
-- `pending` row; the final outcome deletes that row and updates the
-- delivery in one statement.
--
-- Why: with `owner` and `status` in the pending index, every final UPDATE
-- of a delivery changed indexed columns, so it wrote a new row version into
-- every index of `deliveries` (four B-trees, one of them keyed by random
-- UUIDs). Now no index of `deliveries` covers a column the outcome changes,
-- so that UPDATE can be a heap-only (HOT) one; fillfactor leaves room on
-- each page for the new version. The `pending` table stays as small as the
-- backlog, so its indexes stay in memory.
--
-- The dispatcher's inbox goes too: the `deliveries` primary key
-- (request_id) already refuses a request seen before, for as long as the
-- row is kept (the inbox kept claims for 8 days only).
--
-- Deploy: stop every dispatcher replica before starting this version (an
-- older replica would keep writing owners into `deliveries`).

CREATE TABLE pending (
    request_id  text PRIMARY KEY,   -- a deliveries row that is queued or retrying
    owner       text NOT NULL       -- the replica holding it (instances.instance_id)
);
CREATE INDEX pending_owner ON pending (owner, request_id);

INSERT INTO pending (request_id, owner)
    SELECT request_id, owner FROM deliveries
    WHERE owner IS NOT NULL AND status IN ('queued', 'retrying');

-- deliveries.owner is no longer written (forward-only migrations keep the
-- column); NULL everywhere so nobody reads a stale owner from it.
DROP INDEX deliveries_pending;
UPDATE deliveries SET owner = NULL WHERE owner IS NOT NULL;
ALTER TABLE deliveries SET (fillfactor = 85);

DROP TABLE inbox;
