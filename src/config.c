/* config.c — environment and conninfo → validated pqpool_config; password masking. */
#include "internal.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The spec's default target, as key=value so that no character needs URL escaping. */
#define DEFAULT_CONNINFO                                                                 \
	"host=localhost port=5432 dbname=hyperpage user=hyperpage password=password"

/* How much of a bad value an error message shows: a hostile or mistaken
 * variable must not flood a log line. */
#define SHOW_MAX 64

static const char *const ssl_modes[] = {"disable", "allow",     "prefer",
                                        "require", "verify-ca", "verify-full"};
#define SSL_MODES_TEXT "disable, allow, prefer, require, verify-ca or verify-full"

void pqpool_config_init(pqpool_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->pool_max = 20;
	cfg->pool_min = 5;
	cfg->idle_timeout_ms = 30000;
	cfg->connection_timeout_ms = 5000;
	cfg->statement_timeout_ms = 30000;
	cfg->query_timeout_ms = 30000;
	cfg->max_lifetime_ms = 1800000;
	cfg->validate_after_ms = 1000;
	cfg->lease_warn_ms = 60000;
	cfg->retry_attempts = 3;
	cfg->retry_base_delay_ms = 1000;
	cfg->retry_max_delay_ms = 30000;
	cfg->retry_deadline_ms = 60000;
	cfg->health_slow_ms = 1000;
	cfg->health_share = true;
	cfg->prepare = true;
	cfg->fail_fast = false;
}

void pqpool_config_clear(pqpool_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->priv_);
	pqpool_config_init(cfg);
}

/* ------------------------------------------------------------------ */
/* Small text helpers                                                   */
/* ------------------------------------------------------------------ */

/* A bounded string builder that, like snprintf, counts what it would need. */
typedef struct sbuf {
	char *buf;
	size_t cap;
	size_t len;
} sbuf;

static void sb_init(sbuf *b, char *buf, size_t cap)
{
	b->buf = cap ? buf : NULL;
	b->cap = b->buf ? cap : 0;
	b->len = 0;
	if (b->cap)
		b->buf[0] = '\0';
}

static void sb_putn(sbuf *b, const char *s, size_t n)
{
	if (b->len + 1 < b->cap) {
		size_t room = b->cap - 1 - b->len;
		size_t k = n < room ? n : room;
		memcpy(b->buf + b->len, s, k);
		b->buf[b->len + k] = '\0';
	}
	b->len += n;
}

static void sb_puts(sbuf *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

static void sb_putc(sbuf *b, char c)
{
	sb_putn(b, &c, 1);
}

/* Percent-encodes everything outside RFC 3986's unreserved set, and outside
 * `keep`, so that any user, host or database name survives libpq's URI parser. */
static void sb_enc_keep(sbuf *b, const char *s, size_t n, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~' || (c && strchr(keep, c))) {
			sb_putc(b, (char)c);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			sb_putn(b, e, 3);
		}
	}
}

static void sb_enc(sbuf *b, const char *s)
{
	sb_enc_keep(b, s, strlen(s), "");
}

/* A libpq key=value value: always quoted, so spaces and '=' are literal;
 * only the quote and the backslash need escaping inside. */
static void sb_quoted(sbuf *b, const char *s)
{
	sb_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\\' || *s == '\'')
			sb_putc(b, '\\');
		sb_putc(b, *s);
	}
	sb_putc(b, '\'');
}

/* Copies a value for an error message: at most SHOW_MAX bytes (cut on a UTF-8
 * boundary, then "..."), control characters replaced, so that a hostile
 * variable cannot forge extra log lines. */
static const char *shown(const char *v, char out[SHOW_MAX + 4])
{
	size_t n = strlen(v), k = n;
	if (k > SHOW_MAX) {
		k = SHOW_MAX;
		while (k > 0 && ((unsigned char)v[k] & 0xC0) == 0x80)
			k--;
	}
	for (size_t i = 0; i < k; i++) {
		unsigned char c = (unsigned char)v[i];
		out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	strcpy(out + k, k < n ? "..." : "");
	return out;
}

/* Trims a libpq message to one line without control characters. */
static void one_line(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = ' ';
}

/* Plain decimal digits within [min, max]; max <= INT_MAX, so checking the
 * bound after each digit keeps v * 10 + 9 far from overflowing. */
static bool parse_int(const char *s, int min, int max, int *out)
{
	long long v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
		if (v > max)
			return false;
	}
	if (v < min)
		return false;
	*out = (int)v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool valid_ssl_mode(const char *s)
{
	for (size_t i = 0; i < sizeof ssl_modes / sizeof ssl_modes[0]; i++)
		if (strcmp(s, ssl_modes[i]) == 0)
			return true;
	return false;
}

static bool blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* Secrets                                                              */
/* ------------------------------------------------------------------ */

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
static void scrub_unparsed(char *msg, const char *conninfo)
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

/* ------------------------------------------------------------------ */
/* Parsing a conninfo                                                   */
/* ------------------------------------------------------------------ */

static const char *opt_get(const PQconninfoOption *o, const char *kw)
{
	for (; o && o->keyword; o++)
		if (strcmp(o->keyword, kw) == 0)
			return (o->val && o->val[0]) ? o->val : NULL;
	return NULL;
}

/*
 * A URI whose userinfo libpq would read differently from what its author
 * meant: an unencoded '@' or '/' in the password moves part of it into the
 * host, port or database name, where masking would show it. libpq accepts
 * such URIs, so we reject them.
 */
static const char *ambiguous_uri(const char *s)
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

/* libpq's parser takes any text as a port or sslmode and fails only when
 * connecting; check them now so a bad URL is a configuration error. */
static bool valid_port_list(const char *s)
{
	while (true) {
		size_t n = strcspn(s, ",");
		int port;
		char one[8];
		if (n >= sizeof one)
			return false;
		memcpy(one, s, n);
		one[n] = '\0';
		if (n && !parse_int(one, 1, 65535, &port))
			return false;
		if (!s[n])
			return true;
		s += n + 1;
	}
}

/*
 * Parses conninfo with libpq and, with check_values, checks the values libpq
 * leaves for connect time. label names the source in messages
 * ("DATABASE_URL", "conninfo"). Returns PQPOOL_OK with *out owned
 * (PQconninfoFree), or a failure with a password-free message in msg.
 */
static int parse_conninfo(const char *conninfo, const char *label, bool check_values,
                          PQconninfoOption **out, char *msg, size_t msglen)
{
	char *perr = NULL, show[SHOW_MAX + 4];
	const char *why, *v;
	PQconninfoOption *o;
	*out = NULL;
	if ((why = ambiguous_uri(conninfo))) {
		snprintf(msg, msglen, "%s: %s", label, why);
		return PQPOOL_EINVAL;
	}
	o = PQconninfoParse(conninfo, &perr);
	if (!o) {
		if (!perr) {
			snprintf(msg, msglen, "%s: out of memory", label);
			return PQPOOL_ENOMEM;
		}
		/* scrub the whole message before anything truncates it, so no
		 * prefix of a secret survives at a cut */
		scrub_unparsed(perr, conninfo);
		one_line(perr);
		snprintf(msg, msglen, "%s: %s", label, perr);
		PQfreemem(perr);
		return PQPOOL_EINVAL;
	}
	if (!check_values) {
		*out = o;
		return PQPOOL_OK;
	}
	if ((v = opt_get(o, "port")) && !valid_port_list(v)) {
		snprintf(msg, msglen,
		         "%s: port \"%s\": expected an integer from 1 to 65535", label,
		         shown(v, show));
	} else if ((v = opt_get(o, "sslmode")) && !valid_ssl_mode(v)) {
		snprintf(msg, msglen, "%s: sslmode \"%s\": expected %s", label,
		         shown(v, show), SSL_MODES_TEXT);
	} else {
		*out = o;
		return PQPOOL_OK;
	}
	/* our own words, but they quote values: keep the parsed secrets out */
	pqpool__scrub(msg, opt_get(o, "password"));
	pqpool__scrub(msg, opt_get(o, "sslpassword"));
	PQconninfoFree(o);
	return PQPOOL_EINVAL;
}

/* ------------------------------------------------------------------ */
/* Masked rendering                                                     */
/* ------------------------------------------------------------------ */

typedef struct kv_pair {
	const char *k, *v;
} kv_pair;

static const char *kv_get(const kv_pair *e, size_t n, const char *k)
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
static void render_hosts(sbuf *b, const char *host, const char *port)
{
	size_t nh = list_count(host), np = list_count(port);
	size_t items = nh ? nh : (np > 1 ? np : 1);
	for (size_t i = 0; i < items; i++) {
		size_t hl = 0, pl = 0, pi = (np == 1) ? 0 : i;
		const char *h = nh ? list_item(host, i, &hl) : "";
		const char *p = pi < np ? list_item(port, pi, &pl) : "";
		if (i)
			sb_putc(b, ',');
		if (memchr(h, ':', hl) && !memchr(h, '/', hl)) {
			sb_putc(b, '[');
			sb_enc_keep(b, h, hl, ":");
			sb_putc(b, ']');
		} else {
			sb_enc_keep(b, h, hl, "");
		}
		if (pl) {
			sb_putc(b, ':');
			sb_enc_keep(b, p, pl, "");
		}
	}
}

/* postgresql://user:****@host:port/dbname?other=options; never a password. */
static void render_masked(sbuf *b, const kv_pair *e, size_t n)
{
	static const char *const in_netloc[] = {"user", "password", "host",
	                                        "port", "dbname",   "sslpassword"};
	const char *user = kv_get(e, n, "user"), *pw = kv_get(e, n, "password");
	const char *db = kv_get(e, n, "dbname");
	char sep = '?';
	sb_puts(b, "postgresql://");
	if (user)
		sb_enc(b, user);
	if (pw)
		sb_puts(b, ":****");
	if (user || pw)
		sb_putc(b, '@');
	render_hosts(b, kv_get(e, n, "host"), kv_get(e, n, "port"));
	if (db) {
		sb_putc(b, '/');
		sb_enc(b, db);
	}
	for (size_t i = 0; i < n; i++) {
		bool skip = false;
		for (size_t j = 0; j < sizeof in_netloc / sizeof in_netloc[0]; j++)
			skip = skip || strcmp(e[i].k, in_netloc[j]) == 0;
		if (skip)
			continue;
		sb_putc(b, sep);
		sep = '&';
		sb_puts(b, e[i].k);
		sb_putc(b, '=');
		sb_enc(b, e[i].v);
	}
}

/* The options that are set, as borrowed pairs; room for `extra` more.
 * Returns NULL without memory. */
static kv_pair *collect(const PQconninfoOption *o, size_t extra, size_t *n)
{
	size_t total = 0;
	kv_pair *e;
	for (const PQconninfoOption *p = o; p->keyword; p++)
		total++;
	e = malloc((total + extra) * sizeof *e);
	*n = 0;
	if (!e)
		return NULL;
	for (; o->keyword; o++)
		if (o->val && o->val[0])
			e[(*n)++] = (kv_pair){o->keyword, o->val};
	return e;
}

int pqpool_mask_conninfo(const char *conninfo, char *out, size_t outlen)
{
	char msg[PQPOOL__ERRLEN];
	PQconninfoOption *o;
	sbuf b;
	size_t n;
	kv_pair *e;
	/* for display only: a bad port or sslmode is still worth showing */
	int st = parse_conninfo(conninfo ? conninfo : DEFAULT_CONNINFO, "conninfo", false,
	                        &o, msg, sizeof msg);
	sb_init(&b, out, outlen);
	if (st != PQPOOL_OK) {
		sb_puts(&b, "(invalid)");
		return pqpool__fail(st, "%s", msg);
	}
	e = collect(o, 0, &n);
	if (!e) {
		PQconninfoFree(o);
		sb_puts(&b, "(invalid)");
		return pqpool__fail(PQPOOL_ENOMEM, "conninfo: out of memory");
	}
	render_masked(&b, e, n);
	free(e);
	PQconninfoFree(o);
	pqpool__ok();
	return b.len > INT_MAX ? INT_MAX : (int)b.len;
}

/* ------------------------------------------------------------------ */
/* Connection parameters for PQconnectStartParams                       */
/* ------------------------------------------------------------------ */

static void kv_set(kv_pair *e, size_t *n, const char *k, const char *v)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(e[i].k, k) == 0) {
			e[i].v = v;
			return;
		}
	e[(*n)++] = (kv_pair){k, v};
}

int pqpool__params_build(const pqpool_config *cfg, pqpool__params *out, char *err,
                         size_t errlen)
{
	char msg[PQPOOL__ERRLEN], stmt[48], *masked = NULL, *options = NULL, *mem, *w;
	PQconninfoOption *o = NULL;
	size_t n, size, mlen;
	kv_pair *e = NULL;
	sbuf b;
	int st;
	if (out)
		memset(out, 0, sizeof *out);
	if (!out || !cfg) {
		if (err && errlen)
			snprintf(err, errlen, "params_build: NULL argument");
		return pqpool__fail(PQPOOL_EINVAL, "params_build: NULL argument");
	}
	st = parse_conninfo(cfg->conninfo ? cfg->conninfo : DEFAULT_CONNINFO, "conninfo",
	                    true, &o, msg, sizeof msg);
	if (st != PQPOOL_OK)
		goto fail;
	/* four SSL overrides, options, fallback_application_name */
	e = collect(o, 6, &n);
	if (!e)
		goto oom;
	if (cfg->ssl_mode && cfg->ssl_mode[0])
		kv_set(e, &n, "sslmode", cfg->ssl_mode);
	if (cfg->ssl_cert && cfg->ssl_cert[0])
		kv_set(e, &n, "sslcert", cfg->ssl_cert);
	if (cfg->ssl_key && cfg->ssl_key[0])
		kv_set(e, &n, "sslkey", cfg->ssl_key);
	if (cfg->ssl_root_cert && cfg->ssl_root_cert[0])
		kv_set(e, &n, "sslrootcert", cfg->ssl_root_cert);

	/* The masked form shows what the user chose, overrides included, but
	 * not the statement_timeout and application name added below. */
	sb_init(&b, NULL, 0);
	render_masked(&b, e, n);
	mlen = b.len;
	if (!(masked = malloc(mlen + 1)))
		goto oom;
	sb_init(&b, masked, mlen + 1);
	render_masked(&b, e, n);

	if (cfg->statement_timeout_ms > 0) {
		const char *user_opts = kv_get(e, n, "options");
		snprintf(stmt, sizeof stmt, "-c statement_timeout=%d",
		         cfg->statement_timeout_ms);
		if (user_opts) {
			/* later -c settings win on the server, so ours goes last */
			size_t ul = strlen(user_opts);
			if (!(options = malloc(ul + 1 + strlen(stmt) + 1)))
				goto oom;
			memcpy(options, user_opts, ul);
			options[ul] = ' ';
			strcpy(options + ul + 1, stmt);
			kv_set(e, &n, "options", options);
		} else {
			kv_set(e, &n, "options", stmt);
		}
	}
	if (!kv_get(e, n, "application_name") &&
	    !kv_get(e, n, "fallback_application_name"))
		kv_set(e, &n, "fallback_application_name", "pqpool");

	/* one block: both pointer arrays, then every string */
	size = 2 * (n + 1) * sizeof(char *) + mlen + 1;
	for (size_t i = 0; i < n; i++)
		size += strlen(e[i].k) + 1 + strlen(e[i].v) + 1;
	if (!(mem = malloc(size)))
		goto oom;
	out->storage_ = mem;
	out->keywords = (const char **)(void *)mem;
	out->values = out->keywords + n + 1;
	w = (char *)(out->values + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(e[i].k) + 1, vl = strlen(e[i].v) + 1;
		out->keywords[i] = memcpy(w, e[i].k, kl);
		w += kl;
		out->values[i] = memcpy(w, e[i].v, vl);
		w += vl;
	}
	out->keywords[n] = out->values[n] = NULL;
	out->masked = memcpy(w, masked, mlen + 1);
	free(options);
	free(masked);
	free(e);
	PQconninfoFree(o);
	pqpool__ok();
	return PQPOOL_OK;

oom:
	snprintf(msg, sizeof msg, "conninfo: out of memory");
	st = PQPOOL_ENOMEM;
fail:
	free(options);
	free(masked);
	free(e);
	PQconninfoFree(o);
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return pqpool__fail(st, "%s", msg);
}

void pqpool__params_free(pqpool__params *p)
{
	if (!p)
		return;
	free(p->storage_);
	memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------------ */
/* Environment and validation                                           */
/* ------------------------------------------------------------------ */

enum field_kind { F_INT, F_QUERY, F_BOOL };

/* The tunables, in the order their errors are reported. */
typedef struct field {
	const char *env;  /* its environment variable; NULL when it has none */
	const char *name; /* its pqpool_config member */
	enum field_kind kind;
	size_t off;
	int min, max;
} field;

#define FIELD(env, f, kind, min, max)                                                    \
	{                                                                                \
		env, #f, kind, offsetof(pqpool_config, f), min, max                      \
	}
static const field fields[] = {
        FIELD("DB_POOL_MAX", pool_max, F_INT, 1, 10000),
        FIELD("DB_POOL_MIN", pool_min, F_INT, 0, 10000),
        FIELD("DB_IDLE_TIMEOUT", idle_timeout_ms, F_INT, 0, 86400000),
        FIELD("DB_CONNECTION_TIMEOUT", connection_timeout_ms, F_INT, 1, 3600000),
        FIELD("DB_STATEMENT_TIMEOUT", statement_timeout_ms, F_INT, 0, INT_MAX),
        FIELD("DB_QUERY_TIMEOUT", query_timeout_ms, F_INT, 0, INT_MAX),
        FIELD("DB_MAX_LIFETIME", max_lifetime_ms, F_INT, 0, INT_MAX),
        FIELD("DB_LEASE_WARN", lease_warn_ms, F_INT, 0, INT_MAX),
        FIELD("DB_RETRY_ATTEMPTS", retry_attempts, F_INT, 1, 100),
        FIELD("DB_RETRY_BASE_DELAY", retry_base_delay_ms, F_INT, 0, 600000),
        FIELD("DB_RETRY_MAX_DELAY", retry_max_delay_ms, F_INT, 0, 3600000),
        FIELD("DB_RETRY_DEADLINE", retry_deadline_ms, F_INT, 1, INT_MAX),
        FIELD("DB_HEALTH_QUERY", health_query, F_QUERY, 0, 0),
        FIELD("DB_HEALTH_SLOW", health_slow_ms, F_INT, 1, INT_MAX),
        FIELD("DB_HEALTH_SHARE", health_share, F_BOOL, 0, 0),
        FIELD("DB_PREPARED_STATEMENTS", prepare, F_BOOL, 0, 0),
        FIELD("DB_FAIL_FAST", fail_fast, F_BOOL, 0, 0),
        FIELD(NULL, validate_after_ms, F_INT, 0, INT_MAX),
};
#define NFIELDS (sizeof fields / sizeof fields[0])

static int *int_at(pqpool_config *cfg, const field *f)
{
	return (int *)(void *)((char *)cfg + f->off);
}

static int int_of(const pqpool_config *cfg, const field *f)
{
	return *(const int *)(const void *)((const char *)cfg + f->off);
}

/* Collects the first failure; later checks still run but stay silent, so
 * the report follows the fixed order whatever goes wrong where. */
typedef struct report {
	int status;
	char msg[PQPOOL__ERRLEN];
} report;

static void bad(report *r, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void bad(report *r, int status, const char *fmt, ...)
{
	va_list ap;
	if (r->status != PQPOOL_OK)
		return;
	r->status = status;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
}

static int finish(report *r, char *err, size_t errlen)
{
	if (r->status == PQPOOL_OK) {
		if (err && errlen)
			err[0] = '\0';
		pqpool__ok();
		return PQPOOL_OK;
	}
	if (err && errlen)
		snprintf(err, errlen, "%s", r->msg);
	return pqpool__fail(r->status, "%s", r->msg);
}

int pqpool_config_validate(const pqpool_config *cfg, char *err, size_t errlen)
{
	report r = {PQPOOL_OK, ""};
	char label[64];
	if (!cfg) {
		bad(&r, PQPOOL_EINVAL, "config_validate: cfg is NULL");
		return finish(&r, err, errlen);
	}
	if (cfg->conninfo) {
		PQconninfoOption *o;
		char msg[PQPOOL__ERRLEN];
		int st = parse_conninfo(cfg->conninfo, "conninfo", true, &o, msg,
		                        sizeof msg);
		if (st != PQPOOL_OK)
			bad(&r, st, "%s", msg);
		PQconninfoFree(o);
	}
	for (size_t i = 0; i < NFIELDS; i++) {
		const field *f = &fields[i];
		if (f->env)
			snprintf(label, sizeof label, "%s (%s)", f->name, f->env);
		else
			snprintf(label, sizeof label, "%s", f->name);
		if (f->kind == F_INT) {
			int v = int_of(cfg, f);
			if (v < f->min || v > f->max)
				bad(&r, PQPOOL_EINVAL,
				    "%s=%d: expected an integer from %d to %d", label, v,
				    f->min, f->max);
		} else if (f->kind == F_QUERY && cfg->health_query &&
		           blank(cfg->health_query)) {
			bad(&r, PQPOOL_EINVAL, "%s is empty: expected an SQL statement",
			    label);
		}
		if (f->off == offsetof(pqpool_config, pool_min) &&
		    cfg->pool_min > cfg->pool_max)
			bad(&r, PQPOOL_EINVAL,
			    "pool_min (DB_POOL_MIN)=%d is greater than pool_max "
			    "(DB_POOL_MAX)=%d",
			    cfg->pool_min, cfg->pool_max);
	}
	if (cfg->ssl_mode && !valid_ssl_mode(cfg->ssl_mode)) {
		char show[SHOW_MAX + 4];
		bad(&r, PQPOOL_EINVAL, "ssl_mode (SSL_MODE)=\"%s\": expected %s",
		    shown(cfg->ssl_mode, show), SSL_MODES_TEXT);
	}
	return finish(&r, err, errlen);
}

typedef struct env_src {
	pqpool_getenv_fn lookup;
	void *arg;
} env_src;

static const char *getenv_lookup(void *arg, const char *name)
{
	(void)arg;
	return getenv(name);
}

/* A variable's value, or NULL when unset or empty (shells clear with VAR=). */
static const char *env_get(const env_src *e, const char *name)
{
	const char *v = e->lookup(e->arg, name);
	return (v && v[0]) ? v : NULL;
}

static void put_pair(sbuf *b, const char *sep, const char *k, const char *v)
{
	sb_puts(b, sep);
	sb_puts(b, k);
	sb_putc(b, '=');
	sb_quoted(b, v);
}

/* key='value' pairs from the POSTGRES_* parts: quoting, unlike a hand-built
 * URL, keeps any character of the password literal. Owned, or NULL. */
static char *build_conninfo(const char *host, const char *port, const char *db,
                            const char *user, const char *pw)
{
	const char *const k[] = {"host", "port", "dbname", "user", "password"};
	const char *const v[] = {host, port, db, user, pw};
	sbuf b;
	char *s;
	/* measure, then write */
	sb_init(&b, NULL, 0);
	for (int i = 0; i < 5; i++)
		put_pair(&b, i ? " " : "", k[i], v[i]);
	if (!(s = malloc(b.len + 1)))
		return NULL;
	sb_init(&b, s, b.len + 1);
	for (int i = 0; i < 5; i++)
		put_pair(&b, i ? " " : "", k[i], v[i]);
	return s;
}

static const char *or_default(const char *v, const char *def)
{
	return v ? v : def;
}

/* SSL_*_PATH must name a file we can read now, not fail at the first connect. */
static void check_path(report *r, const env_src *e, const char *name, const char **out)
{
	struct stat st;
	const char *v = env_get(e, name);
	*out = v;
	if (!v)
		return;
	if (access(v, R_OK) != 0 || stat(v, &st) != 0 || S_ISDIR(st.st_mode)) {
		char show[SHOW_MAX + 4];
		bad(r, PQPOOL_EINVAL, "%s=\"%s\": expected a readable file", name,
		    shown(v, show));
	}
}

int pqpool_config_from_env(pqpool_config *cfg, pqpool_getenv_fn lookup, void *arg,
                           char *err, size_t errlen)
{
	env_src e = {lookup ? lookup : getenv_lookup, arg};
	report r = {PQPOOL_OK, ""};
	char show[SHOW_MAX + 4], *built = NULL;
	const char *url, *conninfo = NULL, *node_env, *ssl_env, *ssl_mode = NULL;
	const char *cert, *key, *ca, *own_sslmode = NULL;
	PQconninfoOption *o = NULL;
	pqpool_config c;
	bool min_set = false;
	int port;

	if (!cfg) {
		bad(&r, PQPOOL_EINVAL, "config_from_env: cfg is NULL");
		return finish(&r, err, errlen);
	}
	pqpool_config_init(cfg);
	pqpool_config_init(&c);

	/* Lookups return borrowed strings valid during this call; each variable
	 * is read once, so a changing environment cannot give two answers. */
	url = env_get(&e, "DATABASE_URL");
	if (url) {
		/* the POSTGRES_* parts are not used at all then, so not judged */
		conninfo = url;
	} else {
		const char *host = or_default(env_get(&e, "POSTGRES_HOST"), "localhost");
		const char *p = or_default(env_get(&e, "POSTGRES_PORT"), "5432");
		const char *db = or_default(env_get(&e, "POSTGRES_DB"), "hyperpage");
		const char *user = or_default(env_get(&e, "POSTGRES_USER"), "hyperpage");
		const char *pw = or_default(env_get(&e, "POSTGRES_PASSWORD"), "password");
		if (!parse_int(p, 1, 65535, &port))
			bad(&r, PQPOOL_EINVAL,
			    "POSTGRES_PORT=\"%s\": expected an integer from 1 to 65535",
			    shown(p, show));
		else if (!(built = build_conninfo(host, p, db, user, pw)))
			bad(&r, PQPOOL_ENOMEM, "config_from_env: out of memory");
		conninfo = built;
	}
	if (conninfo) {
		char msg[PQPOOL__ERRLEN];
		int st = parse_conninfo(conninfo, url ? "DATABASE_URL" : "POSTGRES_*",
		                        true, &o, msg, sizeof msg);
		if (st != PQPOOL_OK)
			bad(&r, st, "%s", msg);
		own_sslmode = opt_get(o, "sslmode");
	}
	node_env = env_get(&e, "NODE_ENV");

	for (size_t i = 0; i < NFIELDS; i++) {
		const field *f = &fields[i];
		const char *v = f->env ? env_get(&e, f->env) : NULL;
		if (f->off == offsetof(pqpool_config, pool_min))
			min_set = v != NULL;
		if (!v) {
			/* the default minimum follows a smaller maximum rather than
			 * forcing every small deployment to set DB_POOL_MIN too */
			if (f->off == offsetof(pqpool_config, pool_min) &&
			    c.pool_min > c.pool_max)
				c.pool_min = c.pool_max;
			continue;
		}
		if (f->kind == F_INT) {
			if (!parse_int(v, f->min, f->max, int_at(&c, f)))
				bad(&r, PQPOOL_EINVAL,
				    "%s=\"%s\": expected an integer from %d to %d",
				    f->env, shown(v, show), f->min, f->max);
		} else if (f->kind == F_BOOL) {
			if (!parse_bool(v, (bool *)((char *)&c + f->off)))
				bad(&r, PQPOOL_EINVAL,
				    "%s=\"%s\": expected true or false", f->env,
				    shown(v, show));
		} else {
			if (blank(v))
				bad(&r, PQPOOL_EINVAL,
				    "%s=\"%s\": expected an SQL statement", f->env,
				    shown(v, show));
			c.health_query = v;
		}
		if (f->off == offsetof(pqpool_config, pool_min) && min_set &&
		    c.pool_min > c.pool_max)
			bad(&r, PQPOOL_EINVAL,
			    "DB_POOL_MIN=%d is greater than DB_POOL_MAX=%d", c.pool_min,
			    c.pool_max);
	}

	ssl_env = env_get(&e, "SSL_MODE");
	if (ssl_env) {
		if (!valid_ssl_mode(ssl_env))
			bad(&r, PQPOOL_EINVAL, "SSL_MODE=\"%s\": expected %s",
			    shown(ssl_env, show), SSL_MODES_TEXT);
		ssl_mode = ssl_env;
	} else if (node_env && strcmp(node_env, "production") == 0) {
		/* TLS on, but a URL that already verifies the server keeps it */
		bool verifies = own_sslmode && (strcmp(own_sslmode, "verify-ca") == 0 ||
		                                strcmp(own_sslmode, "verify-full") == 0);
		ssl_mode = verifies ? NULL : "require";
	} else if (!own_sslmode) {
		ssl_mode = "disable"; /* the spec's development default */
	}
	check_path(&r, &e, "SSL_CERT_PATH", &cert);
	check_path(&r, &e, "SSL_KEY_PATH", &key);
	check_path(&r, &e, "SSL_CA_PATH", &ca);

	if (r.status == PQPOOL_OK) {
		/* every string in one block hung on priv_ */
		const char *src[6] = {conninfo, ssl_mode, cert, key, ca, c.health_query};
		const char **dst[6] = {&c.conninfo, &c.ssl_mode,      &c.ssl_cert,
		                       &c.ssl_key,  &c.ssl_root_cert, &c.health_query};
		size_t size = 1;
		char *mem;
		for (int i = 0; i < 6; i++)
			size += src[i] ? strlen(src[i]) + 1 : 0;
		if (!(mem = malloc(size))) {
			bad(&r, PQPOOL_ENOMEM, "config_from_env: out of memory");
		} else {
			char *w = mem;
			for (int i = 0; i < 6; i++) {
				size_t l = src[i] ? strlen(src[i]) + 1 : 0;
				*dst[i] = src[i] ? memcpy(w, src[i], l) : NULL;
				w += l;
			}
			c.priv_ = mem;
			*cfg = c;
		}
	}
	free(built);
	PQconninfoFree(o);
	return finish(&r, err, errlen);
}
