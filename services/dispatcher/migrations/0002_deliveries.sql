-- The dispatcher's delivery log, its results outbox, monthly quota usage,
-- per-channel rate-limit overrides, and the liveness of its replicas.
-- Runs as kizuna_dispatcher, whose search_path is the dispatcher schema.

-- One row per SendRequest (request_id), written when the request is taken
-- from `send.requests` and before its offset is stored, so a crash never
-- loses it. While pending (queued, retrying) the row keeps the request and
-- the replica that owns it; a final status clears both.
CREATE TABLE deliveries (
    seq                 bigserial   NOT NULL UNIQUE,  -- listing order and cursor
    request_id          text        PRIMARY KEY,      -- also X-Line-Retry-Key
    tenant_id           text        NOT NULL,
    channel_id          text        NOT NULL,
    kind                text        NOT NULL,         -- push, reply, multicast...
    status              text        NOT NULL CHECK (status IN (
                            'queued', 'retrying', 'sent', 'failed', 'quota_exceeded',
                            'retry_exhausted', 'reply_token_expired', 'invalid')),
    attempts            integer     NOT NULL DEFAULT 0,
    recipient           text        NOT NULL DEFAULT '',  -- `to` of single-recipient kinds
    recipient_count     integer     NOT NULL DEFAULT 0,
    fell_back_to_push   boolean     NOT NULL DEFAULT false,
    line_request_id     text        NOT NULL DEFAULT '',  -- x-line-request-id, last attempt
    accepted_request_id text        NOT NULL DEFAULT '',  -- x-line-accepted-request-id (409)
    http_status         integer     NOT NULL DEFAULT 0,
    error_message       text        NOT NULL DEFAULT '',
    error_details       jsonb,                            -- LINE's details[{message,property}]
    origin_type         text        NOT NULL DEFAULT '',
    origin_id           text        NOT NULL DEFAULT '',
    request             bytea,          -- the SendRequest while pending; NULL once final
    owner               text,           -- replica holding a pending row; NULL once final
    requested_at        timestamptz,    -- the SendRequest's envelope.occurred_at
    received_at         timestamptz NOT NULL DEFAULT now(),
    first_attempt_at    timestamptz,
    next_attempt_at     timestamptz,    -- retrying: not before
    finished_at         timestamptz,
    last_attempt_ms     integer     NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_pending ON deliveries (owner) WHERE status IN ('queued', 'retrying');
CREATE INDEX deliveries_tenant_seq ON deliveries (tenant_id, seq DESC);
CREATE INDEX deliveries_tenant_channel_seq ON deliveries (tenant_id, channel_id, seq DESC);

-- DeliveryResults wait here, written in the same transaction as the final
-- status (docs/architecture.md, guarantee 3); the relay publishes and deletes them.
CREATE TABLE outbox (
    id          bigserial   PRIMARY KEY,
    topic       text        NOT NULL,
    key         bytea,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Messages counted per channel and month (the month starts at midnight on
-- the 1st in the channel's time zone; month_start is that instant).
CREATE TABLE quota_usage (
    channel_id   text        NOT NULL,
    month_start  timestamptz NOT NULL,
    used         bigint      NOT NULL DEFAULT 0 CHECK (used >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, month_start)
);

-- Rate limits changed through the admin API; a channel without a row for
-- an endpoint class uses LINE's default. Every replica re-reads this table.
CREATE TABLE channel_limits (
    channel_id  text        NOT NULL,
    tenant_id   text        NOT NULL,
    class       text        NOT NULL,   -- push, multicast, broadcast... (ratelimit.h)
    rate_limit  bigint      NOT NULL CHECK (rate_limit >= 0),
    period_s    bigint      NOT NULL CHECK (period_s > 0),
    burst       bigint      NOT NULL DEFAULT 0 CHECK (burst >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, class)
);

-- Replicas and their heartbeats: the pending rows of a replica whose
-- heartbeat is older than the lease are taken over by a live one.
CREATE TABLE instances (
    instance_id   text        PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);
