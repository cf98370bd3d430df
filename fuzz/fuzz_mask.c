/* fuzz_mask.c — pqpool_mask_conninfo(): bounded output, and no password in it.
 *
 * Input: a mode byte, an output size byte, a flags byte, then text. Mode 0
 * masks the text as is. Modes 1-3 build a conninfo around a known secret,
 * from two fuzzed segments A and B (split at the first NUL):
 *   1  A password=SECRET B           (key=value; SECRET quoted or not)
 *   2  postgresql://A:SECRET@B       (URI userinfo; SECRET percent-encoded or not)
 *   3  postgresql://A?Bpassword=SECRET&...   (URI query)
 * The segments never hold 'Q', '%' or '\\', so that no value other than the
 * one we place can spell a 'Q' (the secret is made of them), not even through
 * percent-decoding or a backslash escape.
 *
 * Properties:
 * - out is NUL-terminated within outlen, and is the prefix of the full answer
 *   (snprintf-like); the return value is the full length, or PQPOOL_EINVAL
 *   with "(invalid)";
 * - whatever the input: when libpq parses it and no option other than
 *   password and sslpassword has a 'Q', the masked URL has no 'Q';
 * - in modes 1-3, when the segments are such that libpq would read SECRET as
 *   the password (see strong_*), neither the masked URL nor the error message
 *   of a refused conninfo has a 'Q' or the encoded secret.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pqpool.h"

#define SECRET     "QjQ7kQwQ"
#define SECRET_PCT "%51%6A%51%37%6B%51%77%51"
#define FULL       4096

static bool ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Copies n bytes, stopping at a NUL, with 'Q', '%' and '\\' replaced. */
static size_t clean(char *dst, const char *src, size_t n)
{
	size_t i;
	for (i = 0; i < n && src[i]; i++)
		dst[i] =
		        (src[i] == 'Q' || src[i] == '%' || src[i] == '\\') ? 'x' : src[i];
	dst[i] = '\0';
	return i;
}

/* key=value: A is not a URI, and is whole key=value pairs (no quote to open
 * a value that would swallow ours) ending between pairs, so "password="
 * starts a pair. */
static bool strong_kv(const char *a)
{
	size_t n = strlen(a);
	/* a URI prefix makes the whole text a URI, where "password=" means nothing */
	if (strchr(a, '\'') || strncmp(a, "postgresql://", 13) == 0 ||
	    strncmp(a, "postgres://", 11) == 0)
		return false;
	if (n == 0)
		return true;
	if (!ws(a[n - 1]))
		return false;
	while (n > 0 && ws(a[n - 1]))
		n--;
	return n == 0 || a[n - 1] != '=';
}

/* URI userinfo: libpq takes the user up to the first ':' and the password up
 * to the first '@', looking no further than the first '/'. */
static bool strong_userinfo(const char *a)
{
	return strcspn(a, ":@/") == strlen(a);
}

/* URI query: ours is the first '?' (not inside the brackets of an IPv6
 * host, which libpq reads up to the ']'; not before an '@', which would make
 * it userinfo, refused since), and "password=" starts a parameter. */
static bool strong_query(const char *a, const char *b)
{
	size_t n = strlen(b);
	return !strchr(a, '?') && !strchr(a, '[') && (n == 0 || b[n - 1] == '&');
}

static void trap_if(bool bad)
{
	if (bad)
		__builtin_trap();
}

/* No option but the passwords holds a 'Q': then the masked URL shows none. */
static bool q_only_in_passwords(const char *conninfo)
{
	PQconninfoOption *o = PQconninfoParse(conninfo, NULL), *p;
	bool only = true;
	if (!o)
		return false;
	for (p = o; p->keyword; p++)
		if (p->val && strchr(p->val, 'Q') &&
		    strcmp(p->keyword, "password") != 0 &&
		    strcmp(p->keyword, "sslpassword") != 0)
			only = false;
	PQconninfoFree(o);
	return only;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char full[FULL];
	const char *text = (const char *)data + 3, *sep;
	size_t tlen, alen, outlen;
	unsigned mode, flags;
	char *conninfo, *a, *b, *out;
	bool strong = false, pct = false;
	int rc, rc2;

	if (size < 3 || size > 2048)
		return 0;
	mode = data[0] % 4;
	outlen = data[1];
	flags = data[2];
	tlen = size - 3;
	conninfo = malloc(tlen * 2 + 128);
	a = malloc(tlen + 1);
	b = malloc(tlen + 1);
	out = malloc(outlen ? outlen : 1);
	if (!conninfo || !a || !b || !out)
		goto done;
	sep = memchr(text, '\0', tlen);
	alen = sep ? (size_t)(sep - text) : tlen;
	clean(a, text, alen);
	clean(b, sep ? sep + 1 : "", sep ? tlen - alen - 1 : 0);

	switch (mode) {
	case 0:
		memcpy(conninfo, text, alen);
		conninfo[alen] = '\0';
		break;
	case 1:
		strong = strong_kv(a);
		strcpy(conninfo, a);
		strcat(conninfo,
		       (flags & 1) ? "password='" SECRET "'" : "password=" SECRET);
		strcat(conninfo, b);
		break;
	case 2:
		strong = strong_userinfo(a);
		pct = flags & 1;
		strcpy(conninfo, (flags & 2) ? "postgres://" : "postgresql://");
		strcat(conninfo, a);
		strcat(conninfo, pct ? ":" SECRET_PCT "@" : ":" SECRET "@");
		strcat(conninfo, b);
		break;
	case 3:
		/* B's first line is the parameters before ours, the rest after */
		{
			char *nl = strchr(b, '\n');
			const char *after = "";
			if (nl) {
				*nl = '\0';
				after = nl + 1;
			}
			strong = strong_query(a, b);
			pct = flags & 1;
			strcpy(conninfo, "postgresql://");
			strcat(conninfo, a);
			strcat(conninfo, "?");
			strcat(conninfo, b);
			strcat(conninfo,
			       pct ? "password=" SECRET_PCT : "password=" SECRET);
			strcat(conninfo, (flags & 2) ? "&" : "");
			strcat(conninfo, after);
		}
		break;
	}

	/* the whole answer, then the same into outlen bytes */
	rc = pqpool_mask_conninfo(conninfo, full, sizeof full);
	if (rc < 0) {
		const char *msg = pqpool_errmsg();
		trap_if(rc != PQPOOL_EINVAL && rc != PQPOOL_ENOMEM);
		trap_if(strcmp(full, "(invalid)") != 0);
		if (strong) {
			trap_if(strchr(msg, 'Q') != NULL);
			trap_if(strstr(msg, SECRET_PCT) != NULL);
		}
	} else {
		trap_if((size_t)rc != strlen(full) && (size_t)rc < sizeof full);
		if (q_only_in_passwords(conninfo))
			trap_if(strchr(full, 'Q') != NULL);
		if (strong) {
			trap_if(strchr(full, 'Q') != NULL);
			trap_if(strstr(full, SECRET_PCT) != NULL);
		}
	}
	rc2 = pqpool_mask_conninfo(conninfo, outlen ? out : NULL, outlen);
	trap_if(rc2 != rc);
	if (outlen) {
		size_t n = strnlen(out, outlen);
		trap_if(n == outlen); /* not terminated within outlen */
		trap_if(strncmp(out, full, n) != 0 ||
		        n != (strlen(full) < outlen ? strlen(full) : outlen - 1));
	}
done:
	free(conninfo);
	free(a);
	free(b);
	free(out);
	return 0;
}
