/* auth.h — METRICS_TOKEN: the token's rules and a request's bearer credentials. */
#ifndef PQPOOL_CLI_AUTH_H
#define PQPOOL_CLI_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* A token's length, in bytes: long enough not to be guessed, short enough
 * for any client's header. */
#define AUTH_TOKEN_MIN 16
#define AUTH_TOKEN_MAX 1024

/*
 * Checks a METRICS_TOKEN value against the rules: AUTH_TOKEN_MIN to
 * AUTH_TOKEN_MAX characters of RFC 6750's b64token (letters, digits,
 * "-" "." "_" "~" "+" "/", then optionally "=" padding), so that any client
 * can send it as is. Returns 0, or -1 with a message in err that names the
 * variable and the rule, never the token or any of its characters.
 */
int auth_token_validate(const char *token, char *err, size_t errlen);

/*
 * True when given (given_len bytes) equals secret (secret_len bytes). The
 * time taken depends on secret_len only: every byte of the secret is
 * compared whatever the input, with no exit at the first difference, so an
 * attacker timing answers learns neither a prefix nor the length.
 */
bool auth_equal(const char *given, size_t given_len, const char *secret,
                size_t secret_len);

typedef enum auth_result {
	AUTH_OK,      /* "Bearer <token>" with the right token */
	AUTH_MISSING, /* no credentials, or another scheme (Basic...) */
	AUTH_INVALID  /* bearer credentials, but not the token */
} auth_result;

/*
 * Judges an Authorization header value (borrowed; NULL when absent) against
 * token (non-empty). The scheme is matched without regard to case (RFC 7235
 * §2.1: "bearer" is "Bearer"), followed by one or more spaces and the
 * credentials; trailing blanks are ignored.
 */
auth_result auth_check_bearer(const char *authorization, const char *token);

#endif
