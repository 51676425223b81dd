-- Fencing and paged recovery (issue 9; decision 0010).
--
-- epoch: a fencing token per pending row. A takeover moves the owner and
-- adds one to the epoch; the replica that loaded the row remembers the
-- epoch it loaded, and every write of the row's outcome (a retry's update,
-- the final delete of this row) must match owner AND epoch. So a replica
-- that lost its lease, and whose rows were taken over (even taken back by
-- the same instance id later), can never publish a result for them.
--
-- seq: the delivery's seq (deliveries.seq, the topic's order), copied here
-- so that recovery and takeover read a replica's rows in order one page at
-- a time (keyset on (owner, seq)) instead of in one result set. The index on
-- (owner, seq) replaces (owner, request_id): every reader by owner wants
-- the seq order, so the number of index entries per push stays the same.
--
-- Deploy: stop every dispatcher replica before the first one of this
-- version starts (an older one would insert pending rows without seq).

ALTER TABLE pending ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE pending ADD COLUMN seq bigint;
UPDATE pending p SET seq = d.seq FROM deliveries d WHERE d.request_id = p.request_id;
-- A pending row without its delivery cannot be sent (nothing to recover it
-- from) and would block the NOT NULL below.
DELETE FROM pending WHERE seq IS NULL;
ALTER TABLE pending ALTER COLUMN seq SET NOT NULL;
CREATE INDEX pending_owner_seq ON pending (owner, seq);
DROP INDEX pending_owner;
