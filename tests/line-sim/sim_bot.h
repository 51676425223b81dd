/* A channel's bot: the LINE user id that LINE gives every Official
 * Account's bot, and the answer of GET /v2/bot/info (BotInfoResponse in
 * LINE's messaging-api.yml). A channel registered without a bot user id
 * gets one derived from its channel id, so a test can compute it. Pure:
 * any thread. */
#ifndef LINESIM_BOT_H
#define LINESIM_BOT_H

#include <stdbool.h>

#include <jansson.h>

/* "U" and 32 lower-case hex digits, plus NUL. */
#define SIM_BOT_USER_ID_LEN 33

/* True when s has LINE's user id form: "U" and 32 lower-case hex digits. */
bool sim_bot_user_id_valid(const char *s);

/* The default bot user id of channel_id: "U", then sim_hash_bytes
 * (sim_map.h) of the id as 16 hex digits, then its hash of "bot:" and the
 * id as 16 more. Deterministic across runs and machines. */
void sim_bot_user_id_default(const char *channel_id, char out[SIM_BOT_USER_ID_LEN + 1]);

/* BotInfoResponse for a channel: userId, basicId ("@" and 8 characters
 * derived from the bot user id), displayName ("Sim <channel_id>"),
 * chatMode "bot", markAsReadMode "auto" (no premiumId, no pictureUrl).
 * The caller owns the result; NULL when out of memory. */
json_t *sim_bot_info_json(const char *channel_id, const char *bot_user_id);

#endif
