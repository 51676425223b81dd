-- The channel registry publishes every change to the compacted `channels`
-- topic through a transactional outbox (docs/architecture.md, guarantee 3): the record
-- is a row written in the same transaction as the change, and the relay
-- (registry_relay_once) publishes rows in id order and deletes each after
-- the broker's ack.
CREATE TABLE outbox (
    id          bigserial   PRIMARY KEY,
    topic       text        NOT NULL,
    key         bytea,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Short fingerprints of the two secrets (first 8 hex digits of
-- HMAC-SHA256 keyed "kizuna-fingerprint-v1"), computed when a secret is
-- sealed, so that listing channels never has to open a sealed box.
ALTER TABLE channels
    ADD COLUMN secret_fingerprint       text NOT NULL DEFAULT '',
    ADD COLUMN access_token_fingerprint text NOT NULL DEFAULT '';

-- A deleted channel keeps its row (deleted_at set) so that its version keeps
-- increasing if the same LINE channel is registered again: consumers of the
-- compacted topic only accept a higher version. Listing pages through a
-- tenant's channels in byte order of channel_id, whatever the database's
-- collation.
CREATE INDEX channels_tenant_channel ON channels (tenant_id, channel_id COLLATE "C")
    WHERE deleted_at IS NULL;
