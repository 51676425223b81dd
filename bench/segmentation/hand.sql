-- The best SQL we can write by hand for the benchmark's segment (friends of
-- :'channel' with tag :tag_id, score (field :score_id) between :lo and :hi,
-- added at or after :'since'), on the same tables the service reads. The
-- ids are looked up beforehand (the service resolves names when it
-- compiles a filter, too). Each form below is one way to ask; run.sh times
-- them all and compares the service with the fastest.
--
-- form exists: a semi-join per condition (EXISTS)
-- form join: plain joins (each side has at most one row per friend)
-- form in: IN lists (the planner may unique-ify and hash them)
-- form intersect: the three id sets intersected
--
-- psql variables: channel, tag_id, score_id, lo, hi, since; form (one of
-- the names above, or all); explain (set: EXPLAIN (ANALYZE, BUFFERS) each);
-- timing (set: \timing on). Prints "form NAME" before each.
\set ON_ERROR_STOP on
SELECT :'form' IN ('exists', 'all') AS do_exists, :'form' IN ('join', 'all') AS do_join,
       :'form' IN ('in', 'all') AS do_in, :'form' IN ('intersect', 'all') AS do_intersect \gset
\if :{?explain}
\set pre 'EXPLAIN (ANALYZE, BUFFERS)'
\else
\set pre ''
\endif
\if :{?timing}
\timing on
\endif

\if :do_exists
\echo form exists
:pre SELECT count(*)
  FROM friends f
 WHERE f.channel_id = :'channel'
   AND f.added_at >= :'since'
   AND EXISTS (SELECT 1 FROM friend_tags ft WHERE ft.tag_id = :tag_id AND ft.friend_id = f.id)
   AND EXISTS (SELECT 1 FROM friend_fields ff
                WHERE ff.field_id = :score_id AND ff.friend_id = f.id
                  AND ff.number_value BETWEEN :lo AND :hi);
\endif

\if :do_join
\echo form join
:pre SELECT count(*)
  FROM friends f
  JOIN friend_tags ft ON ft.friend_id = f.id AND ft.tag_id = :tag_id
  JOIN friend_fields ff ON ff.friend_id = f.id AND ff.field_id = :score_id
                       AND ff.number_value BETWEEN :lo AND :hi
 WHERE f.channel_id = :'channel'
   AND f.added_at >= :'since';
\endif

\if :do_in
\echo form in
:pre SELECT count(*)
  FROM friends f
 WHERE f.channel_id = :'channel'
   AND f.added_at >= :'since'
   AND f.id IN (SELECT friend_id FROM friend_tags WHERE tag_id = :tag_id)
   AND f.id IN (SELECT friend_id FROM friend_fields
                 WHERE field_id = :score_id AND number_value BETWEEN :lo AND :hi);
\endif

\if :do_intersect
\echo form intersect
:pre SELECT count(*)
  FROM (SELECT id FROM friends WHERE channel_id = :'channel' AND added_at >= :'since'
        INTERSECT
        SELECT friend_id FROM friend_tags WHERE tag_id = :tag_id
        INTERSECT
        SELECT friend_id FROM friend_fields
         WHERE field_id = :score_id AND number_value BETWEEN :lo AND :hi) s;
\endif
