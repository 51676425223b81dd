-- The pending request moves into `pending` too, and `deliveries` keeps
-- room on each page (decision 0005). The final outcome of a delivery
-- updates its row with a HOT update only if the new version fits on the
-- same page, and the writer updates a whole batch of rows at once (all the
-- rows of a page, since they were taken in together), so every page must
-- hold its rows' next versions as well: a row grows from about 200 bytes
-- (queued) to about 260 (final), hence fillfactor 45. Without the request
-- (the SendRequest, often larger than the rest of the row) the row is small
-- and hardly grows, so that room is as little as it can be.

ALTER TABLE pending ADD COLUMN request bytea;
UPDATE pending p SET request = d.request FROM deliveries d WHERE d.request_id = p.request_id;
ALTER TABLE pending ALTER COLUMN request SET NOT NULL;
-- deliveries.request is no longer written (forward-only migrations keep the
-- column).
UPDATE deliveries SET request = NULL WHERE request IS NOT NULL;
ALTER TABLE deliveries SET (fillfactor = 45);
