/* auth.c — METRICS_TOKEN: validation at startup, constant-time bearer checks. */
#include "auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define TOKEN_RULE                                                                       \
	"letters, digits and - . _ ~ + / (RFC 6750's b64token), optionally ending in ="

static bool b64token_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~' ||
	       c == '+' || c == '/';
}

int auth_token_validate(const char *token, char *err, size_t errlen)
{
	size_t n = strlen(token), i = 0;

	if (n < AUTH_TOKEN_MIN || n > AUTH_TOKEN_MAX) {
		snprintf(err, errlen,
		         "METRICS_TOKEN: expected %d to %d characters, got %zu "
		         "(generate one with: openssl rand -hex 32)",
		         AUTH_TOKEN_MIN, AUTH_TOKEN_MAX, n);
		return -1;
	}
	while (i < n && b64token_char((unsigned char)token[i]))
		i++;
	while (i > 0 && i < n && token[i] == '=') /* padding, at the end only */
		i++;
	if (i < n) {
		/* the position, not the character: the message must not give away
		 * any part of a secret */
		snprintf(err, errlen,
		         "METRICS_TOKEN: character %zu is not allowed: expected %s",
		         i + 1, TOKEN_RULE);
		return -1;
	}
	return 0;
}

bool auth_equal(const char *given, size_t given_len, const char *secret,
                size_t secret_len)
{
	/* volatile: the compiler may not turn the loop into an early exit */
	volatile unsigned char diff = 0;

	for (size_t i = 0; i < secret_len; i++) {
		/* past the end of given, compare against 0, which no token byte
		 * is; i < given_len depends on the input only, not the secret */
		unsigned char g = i < given_len ? (unsigned char)given[i] : 0;

		diff |= (unsigned char)(g ^ (unsigned char)secret[i]);
	}
	return (diff | (unsigned char)(given_len != secret_len)) == 0;
}

auth_result auth_check_bearer(const char *authorization, const char *token)
{
	const char *cred;
	size_t n;

	if (!authorization || strncasecmp(authorization, "Bearer", 6) != 0 ||
	    authorization[6] != ' ')
		return AUTH_MISSING;
	cred = authorization + 6;
	while (*cred == ' ')
		cred++;
	n = strlen(cred);
	while (n > 0 && (cred[n - 1] == ' ' || cred[n - 1] == '\t'))
		n--;
	return auth_equal(cred, n, token, strlen(token)) ? AUTH_OK : AUTH_INVALID;
}
