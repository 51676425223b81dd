/* kizunactl token issue: signs an admin-API JWT with $KIZUNA_JWT_KEY (at
 * least 32 bytes), with the claims the services require: tenant, sub, role,
 * aud "kizuna", iat, nbf and exp, at most 24 h after iat (common/auth.h).
 * Only the token and a newline go to stdout, so that TOKEN=$(kizunactl ...)
 * works; the key itself is never printed. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "kizunactl.h"

static const char usage[] =
    "usage: kizunactl token issue --tenant T --role admin|operator|viewer|deployment "
    "--ttl DURATION [--subject S]\n"
    "  DURATION is 90s, 15m, 1h or 24h: at most 24h, which the services enforce.\n"
    "  The signing key comes from $KIZUNA_JWT_KEY (at least 32 bytes).\n"
    "  deployment is the deployment's own operator (above a tenant's admin: it may also\n"
    "  lift a channel's rate limit); never hand it to a tenant.\n"
    "  The subject defaults to $USER.\n";

static bool token_role_valid(const char *role)
{
    return strcmp(role, "admin") == 0 || strcmp(role, "operator") == 0 ||
           strcmp(role, "viewer") == 0 || strcmp(role, "deployment") == 0;
}

static bool token_field_valid(const char *value)
{
    size_t len = strlen(value);
    return len > 0 && len < AUTH_FIELD_MAX;
}

int ctl_token_issue(int argc, char **argv)
{
    static const struct option options[] = {
        {"tenant", required_argument, NULL, 't'}, {"role", required_argument, NULL, 'r'},
        {"ttl", required_argument, NULL, 'l'},    {"subject", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *tenant = NULL, *role = NULL, *ttl_text = NULL, *subject = NULL;
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 't':
            tenant = optarg;
            break;
        case 'r':
            role = optarg;
            break;
        case 'l':
            ttl_text = optarg;
            break;
        case 's':
            subject = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return CTL_EXIT_OK;
        default:
            return ctl_usage_error(usage, NULL);
        }
    }
    if (optind < argc)
        return ctl_usage_error(usage, "unexpected argument");
    if (!tenant || !role || !ttl_text)
        return ctl_usage_error(usage, "--tenant, --role and --ttl are required");
    if (!token_field_valid(tenant))
        return ctl_usage_error(usage, "--tenant must be 1..127 characters");
    if (!token_role_valid(role))
        return ctl_usage_error(usage, "--role must be admin, operator, viewer or deployment");
    long ttl = auth_ttl_parse(ttl_text);
    if (ttl <= 0)
        return ctl_usage_error(usage, "--ttl must look like 90s, 15m, 1h or 24h");
    if (ttl > AUTH_LIFETIME_MAX)
        return ctl_usage_error(usage, "--ttl must be at most 24h: the services refuse longer");
    if (!subject) {
        const char *user = getenv("USER");
        subject = user && *user ? user : "kizunactl";
    }
    if (!token_field_valid(subject))
        return ctl_usage_error(usage, "--subject must be 1..127 characters");

    const char *key = getenv("KIZUNA_JWT_KEY");
    if (!key || !*key) {
        fputs("kizunactl: KIZUNA_JWT_KEY is not set (the services' signing key)\n", stderr);
        return CTL_EXIT_USAGE;
    }
    if (strlen(key) < AUTH_KEY_MIN) {
        fprintf(stderr, "kizunactl: KIZUNA_JWT_KEY must be at least %d bytes (got %zu)\n",
                AUTH_KEY_MIN, strlen(key));
        return CTL_EXIT_USAGE;
    }
    char *token = auth_token_issue(key, strlen(key), tenant, subject, role, ttl, time(NULL));
    if (!token) {
        fputs("kizunactl: could not sign the token\n", stderr);
        return CTL_EXIT_FAIL;
    }
    printf("%s\n", token);
    free(token);
    return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}
