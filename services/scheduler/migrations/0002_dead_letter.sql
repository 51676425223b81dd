-- Dead letters (issue 9): rows the outbox relay can never publish, because
-- the broker or librdkafka refuses the record itself (too large for the
-- topic, invalid, not authorized for the topic). The relay moves such a row
-- here in its round's transaction instead of stopping at it, so the rows
-- behind it, whoever they belong to, go on (common/outbox.c). Kept for
-- diagnosis and replay; listed by GET /v1/dead-letters (common/dead_letter.h)
-- to admins of tenant_id, without the payload.
CREATE TABLE dead_letter (
    id            bigserial   PRIMARY KEY,
    source_table  text        NOT NULL,     -- the table the row left (outbox, spool)
    source_id     bigint      NOT NULL,     -- its id there
    topic         text        NOT NULL,
    key           bytea,
    payload       bytea       NOT NULL,
    tenant_id     text,                     -- the payload envelope's, NULL without one
    channel_id    text        NOT NULL DEFAULT '',
    event_id      text        NOT NULL DEFAULT '',
    error         text        NOT NULL,     -- librdkafka's error name, e.g. MSG_SIZE_TOO_LARGE
    created_at    timestamptz NOT NULL,     -- when the row was enqueued
    dead_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letter_tenant ON dead_letter (tenant_id, id);
