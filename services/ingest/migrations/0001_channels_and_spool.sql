-- The channel registry and the webhook spool. Runs as kizuna_ingest, whose
-- search_path is the ingest schema; no other role can read these tables.

CREATE TABLE channels (
    tenant_id            text        NOT NULL,
    channel_id           text        NOT NULL,       -- LINE's numeric channel id, as text
    name                 text        NOT NULL DEFAULT '',
    secret_sealed        bytea       NOT NULL,       -- AES-256-GCM under KIZUNA_DATA_KEY
    access_token_sealed  bytea       NOT NULL,
    bot_user_id          text        NOT NULL DEFAULT '', -- the webhook "destination"
    timezone             text        NOT NULL DEFAULT 'Asia/Tokyo',
    monthly_quota        bigint      NOT NULL DEFAULT 0 CHECK (monthly_quota >= 0),
    version              bigint      NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    PRIMARY KEY (channel_id)
);
CREATE INDEX channels_tenant ON channels (tenant_id) WHERE deleted_at IS NULL;

-- Webhook events the broker did not confirm within the ack budget. A relay
-- republishes them in id order and deletes each row after its ack.
CREATE TABLE spool (
    id          bigserial   PRIMARY KEY,
    topic       text        NOT NULL,
    key         bytea,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
