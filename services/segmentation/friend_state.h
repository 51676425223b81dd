/* What a follow or an unfollow does to a friend, decided without the
 * database so that the rules can be tested on their own: per friend, LINE
 * timestamps order the follow/unfollow events (friends.state_event_ms holds
 * the newest applied), an older one arriving later changes nothing, and the
 * FriendEvents to emit follow from the state before and after. The rules are
 * written out in docs/events.md ("friend.events"). Pure; any thread. */
#ifndef KIZUNA_SEGMENTATION_FRIEND_STATE_H
#define KIZUNA_SEGMENTATION_FRIEND_STATE_H

#include <stdbool.h>
#include <stdint.h>

/* A reply token older than this when its follow is handled is left out of
 * FriendAdded: LINE lets a token live about a minute. */
#define FRIEND_REPLY_TOKEN_TTL_MS 60000

/* The friend as stored before the event. */
struct friend_state {
    bool exists;            /* false: the row was created for this event */
    bool blocked;           /* friends.blocked */
    bool has_added_at;      /* friends.added_at is set */
    int64_t state_event_ms; /* friends.state_event_ms (0: none applied yet) */
};

/* A follow or unfollow as it arrived. */
struct friend_change {
    bool follow;          /* true: follow; false: unfollow */
    bool is_unblocked;    /* follow.isUnblocked */
    bool standby;         /* mode standby: never a reply */
    bool has_reply_token; /* the event carried a reply token */
    int64_t timestamp_ms; /* LINE's timestamp */
    int64_t now_ms;       /* when it is handled (wall clock) */
};

/* What to do. */
struct friend_decision {
    bool apply;             /* write the new state below; false: stale, nothing changes */
    bool blocked;           /* the new friends.blocked */
    bool set_added_at;      /* set friends.added_at = timestamp (it had none) */
    int64_t state_event_ms; /* the new friends.state_event_ms */
    /* Events, in this order: */
    bool emit_added;       /* FriendAdded */
    bool added_unblocked;  /* its is_unblocked */
    bool added_with_token; /* it carries the reply token */
    bool emit_unblocked;   /* FriendUnblocked, after the FriendAdded */
    bool emit_blocked;     /* FriendBlocked */
    bool request_profile;  /* ask the dispatcher for the profile */
};

/* Decides what change does to before. An event older than the newest
 * applied (timestamp < state_event_ms) is stale: apply is false, and only a
 * missing added_at is filled from a stale follow (it is history, not
 * state). A timestamp equal to the newest applied counts as newer: the later
 * arrival wins a tie. */
struct friend_decision friend_state_decide(const struct friend_state *before,
                                           const struct friend_change *change);

#endif
