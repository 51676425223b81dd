/* The follow/unfollow rules of friend_state.h, in one place. */
#include "friend_state.h"

struct friend_decision friend_state_decide(const struct friend_state *before,
                                           const struct friend_change *change)
{
    struct friend_decision d = {0};
    int64_t newest = before->exists ? before->state_event_ms : 0;
    d.state_event_ms = newest;
    d.blocked = before->exists && before->blocked;
    if (change->timestamp_ms < newest) {
        /* Stale: a newer follow/unfollow was applied. A follow still tells
         * when the friend first added the account, if that was unknown. */
        d.set_added_at = change->follow && !before->has_added_at;
        return d;
    }
    d.apply = true;
    d.state_event_ms = change->timestamp_ms;
    if (change->follow) {
        d.blocked = false;
        d.set_added_at = !before->has_added_at;
        d.emit_added = true;
        /* Reachable again: LINE says so, or we had the friend blocked. The
         * FriendUnblocked always follows a FriendAdded with is_unblocked. */
        d.added_unblocked = change->is_unblocked || (before->exists && before->blocked);
        d.emit_unblocked = d.added_unblocked;
        int64_t age = change->now_ms - change->timestamp_ms;
        d.added_with_token =
            change->has_reply_token && !change->standby && age <= FRIEND_REPLY_TOKEN_TTL_MS;
        d.request_profile = true;
    } else {
        d.blocked = true;
        d.emit_blocked = !(before->exists && before->blocked);
    }
    return d;
}
