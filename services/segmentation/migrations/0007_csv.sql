-- CSV export (csv_export.c) reads a channel's friends in keyset pages,
-- WHERE channel_id = $1 AND id > $last ORDER BY id LIMIT n: this index
-- makes each page a range scan of one channel, whatever the other channels.
CREATE INDEX friends_channel_id ON friends (channel_id, id);
