-- Time (issue 12): what is due, for whom, and when. Four kinds of due rows,
-- each with its own partial index for the due scan (docs/internals/scheduler.md):
-- enrollments (scenario steps), broadcasts, reminder_goal_steps and
-- schedules. The scan takes rows whose due time has come with
-- FOR UPDATE SKIP LOCKED, and in ONE transaction writes each one's DueEvent to
-- the outbox and advances the row, so replicas share the work and a crash
-- never sends twice or skips. Every row is keyed by channel; a channel
-- belongs to one tenant (the `channels` table, fed by the compacted
-- `channels` topic), and every admin query starts from a channel that the
-- token's tenant owns. Users are LINE user ids: this service never reads
-- segmentation's schema, so it has no friend ids.

-- The channels this service has heard of, from the `channels` topic (as
-- segmentation's). timezone is the IANA zone of day/at timings, reminders,
-- cron and quiet hours.
CREATE TABLE channels (
    channel_id  text        PRIMARY KEY,
    tenant_id   text        NOT NULL,
    timezone    text        NOT NULL DEFAULT 'Asia/Tokyo',
    deleted     boolean     NOT NULL DEFAULT false,
    version     bigint      NOT NULL DEFAULT 0,   -- ChannelConfig.version: older records are ignored
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX channels_tenant ON channels (tenant_id, channel_id);

-- --- scenarios -----------------------------------------------------------------------

CREATE TABLE scenarios (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id       text        NOT NULL,
    name             text        NOT NULL,
    trigger_type     text        NOT NULL CHECK (trigger_type IN ('friend_added', 'tag_added', 'manual')),
    trigger_route    text,                    -- friend_added: only through this inflow route; NULL: any
    trigger_tag      text,                    -- tag_added: the tag's name
    reentry          text        NOT NULL DEFAULT 'once' CHECK (reentry IN ('once', 'always')),
    stop_tags        text[]      NOT NULL DEFAULT '{}',
    stop_on_blocked  boolean     NOT NULL DEFAULT true,
    then_scenario_id uuid        REFERENCES scenarios (id) ON DELETE SET NULL,
    -- Bumped by every edit (PUT). An enrollment remembers the version its
    -- next step and due time were computed from (plan_version), so the engine
    -- can tell a plan made before an edit and compute it again.
    version          bigint      NOT NULL DEFAULT 1,
    -- DELETE keeps the row (enrollments and their request ids refer to it)
    -- and stops its enrollments; a deleted scenario triggers nothing.
    deleted_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((trigger_type = 'tag_added') = (trigger_tag IS NOT NULL)),
    CHECK (trigger_type = 'friend_added' OR trigger_route IS NULL)
);
CREATE INDEX scenarios_channel ON scenarios (channel_id, created_at, id) WHERE deleted_at IS NULL;
-- The trigger lookup on every FriendAdded / TagAdded.
CREATE INDEX scenarios_trigger ON scenarios (channel_id, trigger_type, trigger_tag)
    WHERE deleted_at IS NULL;

-- Steps are rows with ids that stay the same across edits, ordered by rank.
-- Why rank and not the index in the list: an enrollment records how far it
-- got as the rank of the last step it passed (enrollments.passed_rank), and
-- that must keep its meaning when an edit inserts, deletes or moves steps:
--   * a new step gets a rank between its neighbours' (ranks start 2^20
--     apart), so friends whose passed_rank is below it will get it, and those
--     already past it will not;
--   * a deleted step keeps its row with deleted = true (never sent again, and
--     its id stays valid for request ids and history);
--   * a changed timing applies to the steps not yet due: it is read when the
--     next step's due time is computed.
-- When two neighbours have no rank left between them, the edit renumbers the
-- scenario's steps and maps every enrollment's passed_rank in the same
-- transaction (rare: after about 20 inserts at one place).
-- position is the 0-based index among the live steps, for the API's
-- step_index; the edit rewrites it.
CREATE TABLE scenario_steps (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    scenario_id  uuid        NOT NULL REFERENCES scenarios (id) ON DELETE CASCADE,
    rank         bigint      NOT NULL,
    position     integer     NOT NULL,
    -- Timing: exactly one form (services/scheduler/timing.h).
    after_s      bigint      CHECK (after_s >= 0),
    after_from   text        CHECK (after_from IN ('start', 'previous')),
    day          integer     CHECK (day >= 0),
    at_min       smallint    CHECK (at_min BETWEEN 0 AND 1439),   -- "HH:MM" as minutes after local midnight
    messages     jsonb,                                        -- 1..5 LINE message objects, checked when stored
    actions      jsonb,                                        -- Action objects, as segmentation runs them
    condition    jsonb,                                        -- a filter tree, judged by segmentation when due
    deleted      boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((after_s IS NOT NULL AND after_from IS NOT NULL AND day IS NULL AND at_min IS NULL)
        OR (after_s IS NULL AND after_from IS NULL AND day IS NOT NULL AND at_min IS NOT NULL)),
    CHECK (messages IS NOT NULL OR actions IS NOT NULL)
);
-- Ranks are unique among a scenario's steps, deleted ones included, so a
-- passed_rank names one place in the order.
CREATE UNIQUE INDEX scenario_steps_rank ON scenario_steps (scenario_id, rank);
-- "The next live step after passed_rank".
CREATE INDEX scenario_steps_live ON scenario_steps (scenario_id, rank) WHERE NOT deleted;

-- One friend's run through one scenario.
CREATE TABLE enrollments (
    id                    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id            text        NOT NULL,
    user_id               text        NOT NULL,      -- LINE user id
    scenario_id           uuid        NOT NULL REFERENCES scenarios (id),
    status                text        NOT NULL DEFAULT 'active'
                                      CHECK (status IN ('active', 'completed', 'stopped')),
    stop_reason           text,                      -- tag, blocked, action, api, scenario_deleted
    -- How far it got: the rank of the last step fired (or skipped because it
    -- was deleted); -1 before the first. See scenario_steps.
    passed_rank           bigint      NOT NULL DEFAULT -1,
    -- The plan: the live step that fires next and when (after quiet hours
    -- are applied at fire time). NULL next_due_at: nothing left (completed or
    -- stopped). The due scan reads only these two and the status.
    next_step_id          uuid,
    next_due_at           timestamptz,
    -- scenarios.version the plan was computed from: an edit that changes the
    -- plan of active enrollments pulls their next_due_at to now(), and the
    -- scan, seeing an old plan_version, computes the plan again instead of
    -- firing (docs/internals/scheduler.md, "Edits").
    plan_version          bigint      NOT NULL,
    -- The inputs of timing.h: the start (day 0 and "from start") and the due
    -- time of the last fired step ("from previous").
    start_at              timestamptz NOT NULL,
    prev_due_at           timestamptz NOT NULL,
    -- The follow's reply token, for a step due at the moment of the follow
    -- (a free reply). Cleared when the first step fires: a token is single-use.
    reply_token           text,
    reply_token_issued_at timestamptz,
    -- The event that enrolled the friend (inbox event id, or an API request
    -- id), for tracing and so a replayed trigger is recognised.
    cause_id              text        NOT NULL DEFAULT '',
    -- Bumped by every write (fire, stop, plan change). The scan and the API
    -- both lock the row; a plan computed outside the lock (an edit's
    -- recompute) is written only if the version did not move.
    version               bigint      NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK (status = 'active' OR next_due_at IS NULL)
);
-- The due scan: WHERE status = 'active' AND next_due_at <= now() ORDER BY
-- next_due_at LIMIT n FOR UPDATE SKIP LOCKED.
CREATE INDEX enrollments_due ON enrollments (next_due_at) WHERE status = 'active';
-- At most one active run of a scenario per friend (reentry 'always' starts
-- a new one only after the last has ended; 'once' is checked against any row).
CREATE UNIQUE INDEX enrollments_active ON enrollments (scenario_id, user_id) WHERE status = 'active';
-- A friend's enrollments: stop on a tag or a block, the API's list, erasure.
CREATE INDEX enrollments_friend ON enrollments (channel_id, user_id, scenario_id);
-- An edit's plan refresh of one scenario's active enrollments.
CREATE INDEX enrollments_scenario ON enrollments (scenario_id, passed_rank) WHERE status = 'active';

-- --- broadcasts ----------------------------------------------------------------------

CREATE TABLE broadcasts (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id      text        NOT NULL,
    name            text        NOT NULL DEFAULT '',
    segment_id      uuid,                    -- NULL: every friend of the channel
    messages        jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'scheduled'
                                CHECK (status IN ('scheduled', 'sending', 'done', 'cancelled')),
    at              timestamptz NOT NULL,    -- when it was asked for (now when "at" was left out)
    -- When the scan looks at it next: `at`, or the end of quiet hours that
    -- held it (a held broadcast stays 'scheduled').
    due_at          timestamptz NOT NULL,
    -- Counts in friends: audience from segmentation's fan-out, the
    -- rest from delivery.results.
    audience        bigint      NOT NULL DEFAULT 0,
    sent            bigint      NOT NULL DEFAULT 0,
    failed          bigint      NOT NULL DEFAULT 0,
    quota_exceeded  bigint      NOT NULL DEFAULT 0,
    skipped         bigint      NOT NULL DEFAULT 0,
    started_at      timestamptz,             -- the DueEvent was written: cancel answers 409 from here
    finished_at     timestamptz,
    cancelled_at    timestamptz,
    version         bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'cancelled' OR cancelled_at IS NOT NULL)
);
CREATE INDEX broadcasts_due ON broadcasts (due_at) WHERE status = 'scheduled';
CREATE INDEX broadcasts_channel ON broadcasts (channel_id, created_at, id);

-- --- reminders -----------------------------------------------------------------------

CREATE TABLE reminders (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id  text        NOT NULL,
    name        text        NOT NULL,
    version     bigint      NOT NULL DEFAULT 1,
    deleted_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reminders_channel ON reminders (channel_id, created_at, id) WHERE deleted_at IS NULL;

CREATE TABLE reminder_steps (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    reminder_id  uuid        NOT NULL REFERENCES reminders (id) ON DELETE CASCADE,
    position     integer     NOT NULL,
    -- Exactly one form (timing.h, struct reminder_timing).
    before_s     bigint      CHECK (before_s >= 0),
    before_days  integer     CHECK (before_days >= 0),
    at_min       smallint    CHECK (at_min BETWEEN 0 AND 1439),
    messages     jsonb,
    actions      jsonb,
    deleted      boolean     NOT NULL DEFAULT false,   -- as scenario_steps: ids stay valid
    CHECK ((before_s IS NOT NULL AND before_days IS NULL AND at_min IS NULL)
        OR (before_s IS NULL AND before_days IS NOT NULL AND at_min IS NOT NULL)),
    CHECK (messages IS NOT NULL OR actions IS NOT NULL)
);
CREATE INDEX reminder_steps_reminder ON reminder_steps (reminder_id, position) WHERE NOT deleted;

-- One friend's goal for one reminder (PUT …/reminders/{id}/goals/{user_id},
-- the set_reminder action, or a date field).
CREATE TABLE reminder_goals (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id   text        NOT NULL,
    reminder_id  uuid        NOT NULL REFERENCES reminders (id),
    user_id      text        NOT NULL,
    goal_at      timestamptz NOT NULL,
    -- Bumped each time the goal moves. Request ids derive from goal + step
    -- only (not generation): a step sent before a move is never sent again.
    generation   bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (reminder_id, user_id)
);
CREATE INDEX reminder_goals_friend ON reminder_goals (channel_id, user_id);

-- A goal's steps, each with its own due time. Why rows per goal and step:
-- the steps of one goal fall in due order, not list order ("3 days before"
-- and "1 hour before"), each is sent or skipped on its own, and moving the
-- goal moves only the pending ones. A step already past when the goal is set
-- is written 'skipped' (never sent late).
CREATE TABLE reminder_goal_steps (
    goal_id      uuid        NOT NULL REFERENCES reminder_goals (id) ON DELETE CASCADE,
    step_id      uuid        NOT NULL REFERENCES reminder_steps (id),
    channel_id   text        NOT NULL,        -- copied so the scan's batch needs no join
    state        text        NOT NULL DEFAULT 'pending'
                             CHECK (state IN ('pending', 'sent', 'skipped')),
    due_at       timestamptz NOT NULL,        -- the step's instant (quiet hours applied at fire time)
    fired_at     timestamptz,
    PRIMARY KEY (goal_id, step_id)
);
CREATE INDEX reminder_goal_steps_due ON reminder_goal_steps (due_at) WHERE state = 'pending';

-- --- recurring schedules -------------------------------------------------------------

CREATE TABLE schedules (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id     text        NOT NULL,
    name           text        NOT NULL,
    cron           text        NOT NULL,             -- five fields, checked by cron_parse when stored
    -- The zone next_at was computed in. The channel's zone can change (the
    -- channels topic); a schedule whose timezone differs is recomputed.
    timezone       text        NOT NULL,
    segment_id     uuid,                             -- NULL: every friend
    messages       jsonb,
    action_set_id  uuid,
    active         boolean     NOT NULL DEFAULT true,
    -- The next occurrence (the cron's wall time, DST rules of cron.h), and
    -- when the scan looks next (next_at, or the end of quiet hours for a
    -- send). Both advance in the fire's transaction.
    next_at        timestamptz NOT NULL,
    due_at         timestamptz NOT NULL,
    -- The last occurrence fired: ScheduleDue.occurrence (1-based) and its
    -- time. Request ids derive from schedule + occurrence.
    occurrence     bigint      NOT NULL DEFAULT 0,
    last_at        timestamptz,
    version        bigint      NOT NULL DEFAULT 1,
    deleted_at     timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((messages IS NULL) <> (action_set_id IS NULL))
);
CREATE INDEX schedules_due ON schedules (due_at) WHERE active AND deleted_at IS NULL;
CREATE INDEX schedules_channel ON schedules (channel_id, created_at, id) WHERE deleted_at IS NULL;

-- --- quiet hours ---------------------------------------------------------------------

-- One window per channel, [from, to) on the channel's wall clock, possibly
-- across midnight (services/scheduler/quiet.h). No row: no quiet hours.
CREATE TABLE quiet_hours (
    channel_id  text        PRIMARY KEY,
    from_min    smallint    NOT NULL CHECK (from_min BETWEEN 0 AND 1439),   -- "HH:MM" as minutes
    to_min      smallint    NOT NULL CHECK (to_min BETWEEN 0 AND 1439),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (from_min <> to_min)
);
