-- The segmentation benchmark's data (bench/segmentation/run.sh), generated
-- set-based inside PostgreSQL, as the service's own role (search_path
-- segmentation) on the schema its migrations made:
--   * two channels of one tenant: :'channel' with :friends friends (the one
--     measured) and :'channel2' with :friends2 (so that every query has to
--     pick its channel's rows out of a bigger table, as in production);
--   * 50 tags per channel ("tag01".."tag50" in three folders); a friend has
--     tag k with probability 0.5 * k^-0.7 (tag01 50 %, tag05 16 %, tag10
--     10 %, tag50 3.2 %: about 4 tags per friend);
--   * 10 fields per channel of every type; "score" (number, 0..999, integer)
--     is set for every friend, the others for 10 % to 70 % of them;
--   * added_at uniform over the last 365 days (so about 8.2 % within 30
--     days), 5 % blocked, a few display names with a comma or a quote (CSV
--     quoting), a third in Japanese.
-- setseed(:seed) makes the data the same on every run with the same sizes.
--
-- A bulk load: the keys, constraints and indexes of the three big tables
-- are set aside for the load and put back after it (one sort per index, one
-- anti-join per foreign key, instead of work per row), all in one
-- transaction, read from the catalog so that what later migrations add is
-- put back too.
--
-- psql variables: channel, channel2, tenant, friends, friends2, seed.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
BEGIN;
SELECT setseed(:seed);

INSERT INTO channels (channel_id, tenant_id, timezone)
VALUES (:'channel', :'tenant', 'Asia/Tokyo'), (:'channel2', :'tenant', 'Asia/Tokyo');

-- Sorts for the window below and the index builds after the load, in memory.
SET LOCAL work_mem = '256MB';
SET LOCAL maintenance_work_mem = '512MB';

-- Set aside, in this order (and put back in the reverse one): the foreign
-- keys from or to the three tables, their primary keys and unique
-- constraints, their other indexes.
CREATE TEMP TABLE bench_aside (pos serial, drop_sql text, add_sql text) ON COMMIT DROP;
INSERT INTO bench_aside (drop_sql, add_sql)
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid))
  FROM pg_constraint c
 WHERE c.contype = 'f'
   AND (c.conrelid IN ('friends'::regclass, 'friend_tags'::regclass, 'friend_fields'::regclass)
        OR c.confrelid IN ('friends'::regclass, 'friend_tags'::regclass, 'friend_fields'::regclass))
 ORDER BY c.conname;
INSERT INTO bench_aside (drop_sql, add_sql)
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid))
  FROM pg_constraint c
 WHERE c.contype IN ('p', 'u')
   AND c.conrelid IN ('friends'::regclass, 'friend_tags'::regclass, 'friend_fields'::regclass)
 ORDER BY c.conname;
INSERT INTO bench_aside (drop_sql, add_sql)
SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
  FROM pg_index i
 WHERE i.indrelid IN ('friends'::regclass, 'friend_tags'::regclass, 'friend_fields'::regclass)
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
 ORDER BY i.indexrelid;
SELECT drop_sql FROM bench_aside ORDER BY pos \gexec

-- Friend ids are given here (the next free ones), so that the tags and
-- fields below can be drawn without reading friends back: the friends of
-- channel c are first_id .. first_id + n - 1. A friend's added_at is a
-- function of its id (bench_added: a multiplicative hash spread over the
-- last 365 days), so a tag can be dated after its friend's follow without
-- a join either.
CREATE TEMP TABLE bench_channel ON COMMIT DROP AS
SELECT c.channel_id, c.n, b.base + 1 + CASE WHEN c.pos = 2 THEN :friends::bigint ELSE 0 END AS first_id
  FROM (VALUES (1, :'channel', :friends::bigint), (2, :'channel2', :friends2::bigint)) c (pos, channel_id, n),
       (SELECT coalesce(max(id), 0) AS base FROM friends) b;

CREATE FUNCTION pg_temp.bench_added(id bigint) RETURNS timestamptz
LANGUAGE sql STABLE
AS $$ SELECT now() - interval '365 days' * (((id * 2654435761) % 4294967296) / 4294967296.0)::float8 $$;

-- The random draws live in a subquery's target list, so that they are
-- drawn once per row.
INSERT INTO friends (id, channel_id, user_id, display_name, picture_url, status_message, language,
                     blocked, added_at, blocked_at, last_message_at, state_event_ms, route,
                     profile_at)
OVERRIDING SYSTEM VALUE
SELECT s.id, s.channel_id,
       'U' || md5(s.channel_id || ':' || s.i),
       CASE WHEN s.i % 101 = 0 THEN 'Friend, "' || s.i || '"'
            WHEN s.i % 3 = 0 THEN '友だち' || s.i
            ELSE 'friend ' || s.i END,
       'https://profile.line-scdn.net/0h' || md5(s.i::text),
       CASE WHEN s.i % 4 = 0 THEN 'status ' || s.i END,
       (ARRAY['ja', 'ja', 'ja', 'ja', 'ja', 'en', 'zh-TW', 'th'])[1 + s.i % 8],
       s.r_blocked < 0.05,
       s.added,
       CASE WHEN s.r_blocked < 0.05 THEN s.added + (now() - s.added) * s.r_when END,
       CASE WHEN s.r_msg < 0.6 THEN s.added + (now() - s.added) * s.r_when END,
       (extract(epoch FROM s.added) * 1000)::bigint,
       CASE WHEN s.r_msg < 0.2 THEN 'route' || (1 + s.i % 5) END,
       s.added
  FROM (SELECT c.channel_id, g.i, c.first_id + g.i - 1 AS id,
               pg_temp.bench_added(c.first_id + g.i - 1) AS added,
               random() AS r_blocked, random() AS r_when, random() AS r_msg
          FROM bench_channel c, generate_series(1, c.n) g (i)) s;
SELECT setval(pg_get_serial_sequence('friends', 'id'), max(id)) FROM friends;

INSERT INTO tags (channel_id, name, folder)
SELECT c, format('tag%s', lpad(k::text, 2, '0')),
       CASE WHEN k <= 10 THEN 'interest' WHEN k <= 30 THEN 'campaign' ELSE '' END
  FROM unnest(ARRAY[:'channel', :'channel2']) c, generate_series(1, 50) k;

INSERT INTO fields (channel_id, name, type, choices)
SELECT c, d.name, d.type, d.choices
  FROM unnest(ARRAY[:'channel', :'channel2']) c,
       (VALUES ('score', 'number', NULL::text[]),
               ('age', 'number', NULL),
               ('points', 'number', NULL),
               ('prefecture', 'choice', ARRAY['Tokyo', 'Osaka', 'Kanagawa', 'Aichi', 'Fukuoka',
                                              'Hokkaido', 'Kyoto', 'Okinawa']),
               ('plan', 'choice', ARRAY['free', 'basic', 'premium']),
               ('birthday', 'date', NULL),
               ('member_since', 'date', NULL),
               ('last_purchase_at', 'datetime', NULL),
               ('memo', 'text', NULL),
               ('referrer', 'text', NULL)) d (name, type, choices);

-- Who has which tag and field: for each (tag or field, channel) with
-- probability p, the friends taken are a Bernoulli(p) sample of the
-- channel's friends, drawn as gaps of a geometric distribution (the
-- distance to the next friend taken is 1 + floor(ln(U) / ln(1 - p))) and
-- summed in order: about n * p draws instead of n. Enough gaps are drawn to
-- pass the last friend (the mean plus 6 standard deviations).
CREATE TEMP TABLE bench_draw ON COMMIT DROP AS
SELECT t.id AS thing_id, 'tag' AS kind, '' AS name, NULL::text[] AS choices, c.first_id, c.n,
       0.5 * power(substr(t.name, 4)::float8, -0.7) AS p
  FROM tags t JOIN bench_channel c USING (channel_id)
UNION ALL
SELECT d.id, 'field', d.name, d.choices, c.first_id, c.n,
       CASE d.name WHEN 'score' THEN 1.0 WHEN 'age' THEN 0.6 WHEN 'points' THEN 0.3
                   WHEN 'prefecture' THEN 0.7 WHEN 'plan' THEN 0.5 WHEN 'birthday' THEN 0.4
                   WHEN 'member_since' THEN 0.25 WHEN 'last_purchase_at' THEN 0.3
                   WHEN 'memo' THEN 0.2 ELSE 0.1 END::float8
  FROM fields d JOIN bench_channel c USING (channel_id);

CREATE VIEW pg_temp.bench_pick AS
SELECT d.thing_id, d.kind, d.name, d.choices, d.first_id + k.pos - 1 AS friend_id
  FROM bench_draw d
 CROSS JOIN LATERAL (
       SELECT pos::bigint
         FROM (SELECT sum(gap) OVER (ORDER BY j) AS pos
                 FROM (SELECT j, CASE WHEN d.p >= 1 THEN 1
                                      ELSE 1 + floor(ln(1 - random()) / ln(1 - d.p)) END AS gap
                         FROM generate_series(1, ceil(d.n * d.p + 6 * sqrt(d.n * d.p) + 10)::int) j) g) w
        WHERE pos <= d.n) k;

-- Tags, each added some time after the friend was.
INSERT INTO friend_tags (tag_id, friend_id, added_at)
SELECT thing_id, friend_id, added + (now() - added) * r
  FROM (SELECT thing_id, friend_id, pg_temp.bench_added(friend_id) AS added, random() AS r
          FROM pg_temp.bench_pick WHERE kind = 'tag') s;

INSERT INTO friend_fields (field_id, friend_id, text_value, number_value, date_value, time_value)
SELECT thing_id, friend_id,
       CASE name WHEN 'prefecture' THEN choices[1 + floor(r * 8)::int]
                 WHEN 'plan' THEN choices[1 + floor(r * 3)::int]
                 WHEN 'memo' THEN 'memo ' || friend_id
                 WHEN 'referrer' THEN 'ref-' || floor(r * 1000)::int END,
       CASE name WHEN 'score' THEN floor(r * 1000)
                 WHEN 'age' THEN 18 + floor(r * 60)
                 WHEN 'points' THEN floor(r * 100000) / 100 END,
       CASE name WHEN 'birthday' THEN date '1960-01-01' + floor(r * 16000)::int
                 WHEN 'member_since' THEN date '2020-01-01' + floor(r * 2000)::int END,
       CASE name WHEN 'last_purchase_at' THEN now() - r * interval '400 days' END
  FROM (SELECT *, random() AS r FROM pg_temp.bench_pick WHERE kind = 'field') s;

SELECT add_sql FROM bench_aside ORDER BY pos DESC \gexec
COMMIT;
