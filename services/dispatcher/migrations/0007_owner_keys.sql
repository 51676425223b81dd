-- Channel limits and quota usage belong to a tenant's channel, not to the
-- LINE channel id alone (issue 9, channel ownership; decision 0011).
--
-- A channel id deleted by one tenant and registered by another (ingest
-- proves the new owner holds the channel's access token) must start with
-- LINE's default rate limits and no quota usage: the former owner's
-- overrides and this month's count are theirs. Both tables are keyed by
-- (tenant_id, channel_id, ...) from now on; the dispatcher reads and writes
-- them with the tenant that owns the channel (the `channels` topic says
-- which), so the former owner's rows stay (and come back if that tenant
-- registers the channel again) but count for nobody else.
--
-- Existing usage rows are attributed to the tenant of the channel's latest
-- delivery; a row with no delivery to go by keeps tenant '' and counts for
-- no one (LINE's own count, read by the quota sync, restores the month).

ALTER TABLE quota_usage ADD COLUMN tenant_id text;
UPDATE quota_usage q SET tenant_id = d.tenant_id
  FROM (SELECT DISTINCT ON (channel_id) channel_id, tenant_id
          FROM deliveries ORDER BY channel_id, seq DESC) d
 WHERE d.channel_id = q.channel_id;
UPDATE quota_usage SET tenant_id = '' WHERE tenant_id IS NULL;
ALTER TABLE quota_usage ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE quota_usage DROP CONSTRAINT quota_usage_pkey;
ALTER TABLE quota_usage ADD PRIMARY KEY (tenant_id, channel_id, month_start);

ALTER TABLE channel_limits DROP CONSTRAINT channel_limits_pkey;
ALTER TABLE channel_limits ADD PRIMARY KEY (tenant_id, channel_id, class);
