-- People (issue 10): who each friend of each channel is and what we know
-- about them. Rows are keyed by channel: a channel belongs to one tenant
-- (the `channels` table, fed by the compacted `channels` topic), and every
-- admin query starts from a channel that the token's tenant owns.
-- Friends have a bigint id so that the tables that hang off them (tags,
-- fields, the talk) stay narrow at millions of rows.

-- The channels this service has heard of, from the `channels` topic.
CREATE TABLE channels (
    channel_id  text        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    timezone    text        NOT NULL DEFAULT 'Asia/Tokyo',
    deleted     boolean     NOT NULL DEFAULT false,
    version     bigint      NOT NULL DEFAULT 0,   -- ChannelConfig.version: older records are ignored
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE friends (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id      text        NOT NULL,
    user_id         text        NOT NULL,
    display_name    text,
    picture_url     text,
    status_message  text,
    language        text,
    blocked         boolean     NOT NULL DEFAULT false,
    added_at        timestamptz,          -- first follow seen; NULL: known only from other events
    blocked_at      timestamptz,
    last_message_at timestamptz,
    -- The LINE timestamp (unix ms) of the newest follow/unfollow applied:
    -- an older one arriving later does not undo it (per-friend order).
    state_event_ms  bigint      NOT NULL DEFAULT 0,
    route           text,                 -- inflow route code (issue 11)
    profile_at      timestamptz,          -- when the profile was last stored
    UNIQUE (channel_id, user_id)
);
CREATE INDEX friends_channel_added ON friends (channel_id, added_at);

-- Tags, in folders (a folder is a label: '' is the top level).
CREATE TABLE tags (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id  text        NOT NULL,
    name        text        NOT NULL,
    folder      text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, name)
);

CREATE TABLE friend_tags (
    tag_id      bigint      NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    friend_id   bigint      NOT NULL REFERENCES friends (id) ON DELETE CASCADE,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tag_id, friend_id)
);
CREATE INDEX friend_tags_friend ON friend_tags (friend_id);

-- Custom fields, typed. A value lives in the one column of its type.
CREATE TABLE fields (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id  text        NOT NULL,
    name        text        NOT NULL,
    type        text        NOT NULL CHECK (type IN ('text', 'number', 'date', 'datetime', 'choice')),
    choices     text[],                 -- type choice only
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, name)
);

CREATE TABLE friend_fields (
    field_id     bigint      NOT NULL REFERENCES fields (id) ON DELETE CASCADE,
    friend_id    bigint      NOT NULL REFERENCES friends (id) ON DELETE CASCADE,
    text_value   text,                  -- text, choice
    number_value numeric,               -- number (exact, so that scoring adds without drift)
    date_value   date,                  -- date
    time_value   timestamptz,           -- datetime
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (field_id, friend_id)
);
CREATE INDEX friend_fields_friend ON friend_fields (friend_id);
CREATE INDEX friend_fields_number ON friend_fields (field_id, number_value) WHERE number_value IS NOT NULL;
CREATE INDEX friend_fields_time ON friend_fields (field_id, time_value) WHERE time_value IS NOT NULL;
CREATE INDEX friend_fields_date ON friend_fields (field_id, date_value) WHERE date_value IS NOT NULL;

-- The 1:1 talk: each friend's messages in both directions.
CREATE TABLE talk (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    friend_id        bigint      NOT NULL REFERENCES friends (id) ON DELETE CASCADE,
    direction        text        NOT NULL CHECK (direction IN ('in', 'out')),
    at               timestamptz NOT NULL,
    message_type     text        NOT NULL,   -- text, image, sticker... (out: the first message's)
    text             text,                   -- a text message's text
    line_message_id  text,                   -- in: LINE's message id
    webhook_event_id text,                   -- in: the event it came with
    request_id       uuid,                   -- out: the SendRequest's request_id
    messages         jsonb,                  -- out: the message objects sent
    status           text,                   -- out: pending, then DeliveryResult's status (sent, failed...)
    error            text,                   -- out: LINE's error message, if any
    UNIQUE (request_id)
);
CREATE INDEX talk_friend ON talk (friend_id, at DESC, id DESC);

-- Group and room chats the bot is in: recorded, but they make no friends.
CREATE TABLE chats (
    channel_id    text        NOT NULL,
    chat_id       text        NOT NULL,       -- groupId or roomId
    type          text        NOT NULL CHECK (type IN ('group', 'room')),
    joined        boolean     NOT NULL DEFAULT true,
    last_event_at timestamptz NOT NULL,
    PRIMARY KEY (channel_id, chat_id)
);

-- Saved filter trees (services/segmentation/filter.h).
CREATE TABLE segments (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id  text        NOT NULL,
    name        text        NOT NULL,
    filter      jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, name)
);

-- Named, validated message bundles.
CREATE TABLE templates (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id  text        NOT NULL,
    name        text        NOT NULL,
    messages    jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, name)
);
