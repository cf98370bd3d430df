/* secret.c — the promise that no password is ever shown, kept in one file:
 * scrubbing a known secret from a message, scrubbing whatever may be one from
 * libpq's messages about a conninfo it refused, refusing URIs whose password
 * libpq would read as part of the host or database, and the masked URL. */
#include "secret.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/*
 * In place, so it never needs memory. A secret of 4 bytes or more becomes
 * "****"; a shorter one becomes as many '*' as it had bytes, because growing
 * the message could overflow the caller's buffer. Scanning resumes after each
 * replacement, so a secret made of '*' cannot loop.
 */
void pqpool__scrub(char *msg, const char *secret)
{
	size_t n, rep;
	char *p;
	if (!msg || !secret || !(n = strlen(secret)))
		return;
	rep = n < 4 ? n : 4;
	p = msg;
	while ((p = strstr(p, secret))) {
		memset(p, '*', rep);
		if (n > 4)
			memmove(p + rep, p + n, strlen(p + n) + 1);
		p += rep;
	}
}

static bool is_uri(const char *s)
{
	return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

/* Where a secret may sit in a conninfo that libpq could not parse: spans of
 * the raw text, to be scrubbed as written, percent-decoded or unquoted. */
enum span_kind { SPAN_RAW, SPAN_PCT, SPAN_QUOTED };
typedef struct span {
	const char *p;
	size_t n;
	enum span_kind kind;
} span;
#define MAX_SPANS 48

typedef struct spans {
	span s[MAX_SPANS];
	int n;
	bool overflow;
} spans;

static void add_span(spans *sp, const char *p, size_t n, enum span_kind kind)
{
	if (n == 0)
		return;
	for (int i = 0; i < sp->n; i++)
		if (sp->s[i].p == p && sp->s[i].n == n && sp->s[i].kind == kind)
			return;
	if (sp->n == MAX_SPANS) {
		sp->overflow = true;
		return;
	}
	sp->s[sp->n++] = (span){p, n, kind};
}

static void add_raw_and_decoded(spans *sp, const char *p, size_t n)
{
	add_span(sp, p, n, SPAN_RAW);
	if (memchr(p, '%', n))
		add_span(sp, p, n, SPAN_PCT);
}

/* The password of userinfo [a, at): after the first ':'. */
static void add_userinfo(spans *sp, const char *a, const char *at)
{
	const char *colon = memchr(a, ':', (size_t)(at - a));
	if (colon)
		add_raw_and_decoded(sp, colon + 1, (size_t)(at - colon - 1));
}

static void find_secret_spans(const char *s, spans *sp)
{
	/* URI userinfo, found by hand because libpq failed. Between "://" and
	 * the last '@' before the first '/'; also libpq's own reading (the first
	 * '@') and the last '@' anywhere, for a password holding a raw '@' or '/'. */
	for (const char *u = strstr(s, "://"); u; u = strstr(u + 3, "://")) {
		const char *a = u + 3;
		size_t alen = strcspn(a, "/");
		const char *first = memchr(a, '@', alen), *last = NULL, *any = NULL;
		for (const char *q = a; *q; q++)
			if (*q == '@') {
				if (q < a + alen)
					last = q;
				any = q;
			}
		if (first)
			add_userinfo(sp, a, first);
		if (last)
			add_userinfo(sp, a, last);
		if (any)
			add_userinfo(sp, a, any);
	}
	/* password=... and sslpassword=...: key=value form or URI query. */
	for (const char *k = strstr(s, "password"); k; k = strstr(k + 8, "password")) {
		const char *v = k + 8;
		v += strspn(v, " \t\n\r\f\v");
		if (*v != '=')
			continue;
		v++;
		v += strspn(v, " \t\n\r\f\v");
		if (*v == '\'') {
			const char *e = ++v;
			while (*e && *e != '\'')
				e += (e[0] == '\\' && e[1]) ? 2 : 1;
			add_span(sp, v, (size_t)(e - v), SPAN_RAW);
			add_span(sp, v, (size_t)(e - v), SPAN_QUOTED);
			continue;
		}
		/* unquoted, a backslash still escapes the next character */
		size_t n = 0;
		while (v[n] && !isspace((unsigned char)v[n]))
			n += (v[n] == '\\' && v[n + 1]) ? 2 : 1;
		add_raw_and_decoded(sp, v, n);
		add_span(sp, v, n, SPAN_QUOTED);
		add_raw_and_decoded(sp, v, strcspn(v, "& \t\n\r\f\v"));
		/* "password=two words" unquoted: libpq reads "words" as the next
		 * keyword and echoes it; treat following words as secret too, up to
		 * the keyword part of the next key=value. */
		for (const char *w = v + n;;) {
			w += strspn(w, " \t\n\r\f\v");
			size_t wn = strcspn(w, " \t\n\r\f\v");
			if (!wn)
				break;
			size_t kn = strcspn(w, "= \t\n\r\f\v");
			add_span(sp, w, kn, SPAN_RAW);
			if (kn < wn)
				break;
			w += wn;
		}
	}
}

/* Writes span's text, decoded as its kind says, to out (room for sp->n + 1). */
static size_t span_text(const span *sp, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < sp->n; i++) {
		char c = sp->p[i];
		if (sp->kind == SPAN_PCT && c == '%' && i + 2 < sp->n &&
		    isxdigit((unsigned char)sp->p[i + 1]) &&
		    isxdigit((unsigned char)sp->p[i + 2])) {
			char h[3] = {sp->p[i + 1], sp->p[i + 2], '\0'};
			out[o++] = (char)strtol(h, NULL, 16);
			i += 2;
			continue;
		} else if (sp->kind == SPAN_QUOTED && c == '\\' && i + 1 < sp->n) {
			c = sp->p[++i];
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return o;
}

/*
 * Scrubs from msg whatever in conninfo may be a password, for a conninfo that
 * libpq refused (its messages can echo any fragment of the input). Longer
 * candidates go first, so a short one cannot break a longer match. Without
 * memory, or with too many candidates, the whole message is starred: safe.
 */
void pqpool__scrub_unparsed(char *msg, const char *conninfo)
{
	spans sp = {.n = 0, .overflow = false};
	size_t lens[MAX_SPANS];
	int order[MAX_SPANS];
	char *tmp;
	find_secret_spans(conninfo, &sp);
	tmp = malloc(strlen(conninfo) + 1);
	if (!tmp || sp.overflow) {
		free(tmp);
		memset(msg, '*', strlen(msg));
		return;
	}
	for (int i = 0; i < sp.n; i++) {
		lens[i] = span_text(&sp.s[i], tmp);
		order[i] = i;
	}
	for (int i = 1; i < sp.n; i++)
		for (int j = i; j > 0 && lens[order[j]] > lens[order[j - 1]]; j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (int i = 0; i < sp.n; i++) {
		span_text(&sp.s[order[i]], tmp);
		pqpool__scrub(msg, tmp);
	}
	free(tmp);
}

/*
 * A URI whose userinfo libpq would read differently from what its author
 * meant: an unencoded '@' or '/' in the password moves part of it into the
 * host, port or database name, where masking would show it. libpq accepts
 * such URIs, so we reject them.
 */
const char *pqpool__ambiguous_uri(const char *s)
{
	const char *a, *path, *q;
	size_t alen;
	int ats = 0;
	if (!is_uri(s))
		return NULL;
	a = strstr(s, "://") + 3;
	alen = strcspn(a, "/");
	for (size_t i = 0; i < alen; i++)
		ats += a[i] == '@';
	if (ats > 1)
		return "more than one '@' before the host: percent-encode '@' in the "
		       "user name or password as %40";
	/* libpq looks for the userinfo's '@' up to the first '/' only, past a
	 * '?': in postgresql://h?password=pw&application_name=a@b it reads
	 * "h?password=pw&application_name=a" as the user name, shown in full */
	q = memchr(a, '?', alen);
	if (q && memchr(q, '@', alen - (size_t)(q - a)))
		return "'@' after a '?' with no '/' before it: libpq would read the "
		       "query as the user name; write postgresql://host/?... or "
		       "percent-encode '?' in the user name or password as %3F";
	path = a + alen;
	if (memchr(path, '@', strcspn(path, "?")))
		return "'@' after the host: percent-encode '/' in the password as %2F "
		       "and '@' in the database name as %40";
	return NULL;
}

/* Percent-encodes everything outside RFC 3986's unreserved set, and outside
 * `keep`, so that any user, host or database name survives libpq's URI parser. */
static void put_encoded_keep(pqc_sbuf *b, const char *s, size_t n, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~' || (c && strchr(keep, c))) {
			pqc_sbuf_putc(b, (char)c);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			pqc_sbuf_putn(b, e, 3);
		}
	}
}

static void put_encoded(pqc_sbuf *b, const char *s)
{
	put_encoded_keep(b, s, strlen(s), "");
}

const char *pqpool__kv_get(const pqpool__kv *e, size_t n, const char *k)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].k, k) == 0)
			return e[i].v;
	return NULL;
}

/* The i-th item of a comma-separated list ("" when past the end). */
static const char *list_item(const char *s, size_t i, size_t *len)
{
	for (; i > 0 && s; i--) {
		s = strchr(s, ',');
		if (s)
			s++;
	}
	if (!s) {
		*len = 0;
		return "";
	}
	*len = strcspn(s, ",");
	return s;
}

static size_t list_count(const char *s)
{
	size_t n = 1;
	if (!s)
		return 0;
	for (; *s; s++)
		n += *s == ',';
	return n;
}

/* host1:port1,host2:port2 as libpq's URI parser reads it back: an IPv6
 * address in brackets, a socket directory or anything unusual percent-encoded
 * (libpq decodes hosts). A single port applies to every host, as in libpq. */
static void render_hosts(pqc_sbuf *b, const char *host, const char *port)
{
	size_t nh = list_count(host), np = list_count(port);
	size_t items = nh ? nh : (np > 1 ? np : 1);
	for (size_t i = 0; i < items; i++) {
		size_t hl = 0, pl = 0, pi = (np == 1) ? 0 : i;
		const char *h = nh ? list_item(host, i, &hl) : "";
		const char *p = pi < np ? list_item(port, pi, &pl) : "";
		if (i)
			pqc_sbuf_putc(b, ',');
		if (memchr(h, ':', hl) && !memchr(h, '/', hl)) {
			pqc_sbuf_putc(b, '[');
			put_encoded_keep(b, h, hl, ":");
			pqc_sbuf_putc(b, ']');
		} else {
			put_encoded_keep(b, h, hl, "");
		}
		if (pl) {
			pqc_sbuf_putc(b, ':');
			put_encoded_keep(b, p, pl, "");
		}
	}
}

/* postgresql://user:****@host:port/dbname?other=options; never a password. */
void pqpool__render_masked(pqc_sbuf *b, const pqpool__kv *e, size_t n)
{
	static const char *const in_netloc[] = {"user", "password", "host",
	                                        "port", "dbname",   "sslpassword"};
	const char *user = pqpool__kv_get(e, n, "user"),
	           *pw = pqpool__kv_get(e, n, "password");
	const char *db = pqpool__kv_get(e, n, "dbname");
	char sep = '?';
	pqc_sbuf_puts(b, "postgresql://");
	if (user)
		put_encoded(b, user);
	if (pw)
		pqc_sbuf_puts(b, ":****");
	if (user || pw)
		pqc_sbuf_putc(b, '@');
	render_hosts(b, pqpool__kv_get(e, n, "host"), pqpool__kv_get(e, n, "port"));
	if (db) {
		pqc_sbuf_putc(b, '/');
		put_encoded(b, db);
	}
	for (size_t i = 0; i < n; i++) {
		bool skip = false;
		for (size_t j = 0; j < sizeof in_netloc / sizeof in_netloc[0]; j++)
			skip = skip || strcmp(e[i].k, in_netloc[j]) == 0;
		if (skip)
			continue;
		pqc_sbuf_putc(b, sep);
		sep = '&';
		pqc_sbuf_puts(b, e[i].k);
		pqc_sbuf_putc(b, '=');
		put_encoded(b, e[i].v);
	}
}
