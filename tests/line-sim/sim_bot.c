/* The bot behind a simulated channel: its user id and LINE's bot info. */
#include "sim_bot.h"

#include <stdio.h>
#include <string.h>

#include "sim_map.h"

bool sim_bot_user_id_valid(const char *s)
{
    if (!s || s[0] != 'U' || strlen(s) != SIM_BOT_USER_ID_LEN)
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

void sim_bot_user_id_default(const char *channel_id, char out[SIM_BOT_USER_ID_LEN + 1])
{
    size_t n = strlen(channel_id);
    uint64_t a = sim_hash_bytes(channel_id, n, SIM_HASH_SEED);
    uint64_t b = sim_hash_bytes(channel_id, n, sim_hash_bytes("bot:", 4, SIM_HASH_SEED));
    snprintf(out, SIM_BOT_USER_ID_LEN + 1, "U%016llx%016llx", (unsigned long long)a,
             (unsigned long long)b);
}

json_t *sim_bot_info_json(const char *channel_id, const char *bot_user_id)
{
    char basic[16], name[300];
    /* LINE's basic ids are "@" and 8 lower-case letters and digits. */
    snprintf(basic, sizeof basic, "@%.8s", bot_user_id + 1);
    snprintf(name, sizeof name, "Sim %.256s", channel_id);
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "userId", bot_user_id, "basicId", basic,
                     "displayName", name, "chatMode", "bot", "markAsReadMode", "auto");
}
