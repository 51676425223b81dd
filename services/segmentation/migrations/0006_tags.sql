-- Templates (issue 10, tags part): a sequence number for list paging
-- (?cursor= is the last seq of a page; ids are UUIDs, which do not order).
ALTER TABLE templates ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX templates_channel_seq ON templates (channel_id, seq);
