-- What exporting the benchmark's columns (user_id, display_name, added_at,
-- blocked, tags, field:score) of every friend of :'channel' costs
-- PostgreSQL alone, in one statement, with the tag names (which the
-- service's export, services/segmentation/csv_export.c, takes from a map of
-- the channel's tags after reading each row's tag ids): form subqueries
-- reads each row's tags and field with a subquery per row, as the export's
-- pages do; form joins is set-based (one GROUP BY of the tags, joins).
-- run.sh times each as COPY ... TO STDOUT read by psql.
--
-- psql variables: channel, score_id, form (subqueries or joins).
\set ON_ERROR_STOP on
SELECT :'form' = 'subqueries' AS do_subqueries \gset
\if :do_subqueries
COPY (SELECT f.user_id, f.display_name,
             to_char(f.added_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
             CASE WHEN f.blocked THEN '1' ELSE '0' END,
             (SELECT string_agg(t.name, '/' ORDER BY t.name)
                FROM friend_tags ft JOIN tags t ON t.id = ft.tag_id
               WHERE ft.friend_id = f.id),
             (SELECT number_value::text FROM friend_fields
               WHERE field_id = :score_id AND friend_id = f.id)
        FROM friends f
       WHERE f.channel_id = :'channel'
       ORDER BY f.id)
  TO STDOUT WITH (FORMAT csv, HEADER);
\else
COPY (SELECT f.user_id, f.display_name,
             to_char(f.added_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
             CASE WHEN f.blocked THEN '1' ELSE '0' END,
             tg.tags, ff.number_value::text
        FROM friends f
        LEFT JOIN (SELECT ft.friend_id, string_agg(t.name, '/' ORDER BY t.name) AS tags
                     FROM friend_tags ft JOIN tags t ON t.id = ft.tag_id
                    WHERE t.channel_id = :'channel'
                    GROUP BY ft.friend_id) tg ON tg.friend_id = f.id
        LEFT JOIN friend_fields ff ON ff.friend_id = f.id AND ff.field_id = :score_id
       WHERE f.channel_id = :'channel'
       ORDER BY f.id)
  TO STDOUT WITH (FORMAT csv, HEADER);
\endif
