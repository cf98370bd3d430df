/* conninfo.c — libpq connection strings: parsed and checked by libpq's own
 * parser (PQconninfoParse, never by hand), shown masked, and turned once, at
 * open, into the keyword arrays every connect uses. */
#include "conninfo.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "parse.h"
#include "sbuf.h"
#include "secret.h"
#include "utf8.h"

static const char *const ssl_modes[] = {"disable", "allow",     "prefer",
                                        "require", "verify-ca", "verify-full"};

bool pqpool__valid_ssl_mode(const char *s)
{
	for (size_t i = 0; i < sizeof ssl_modes / sizeof ssl_modes[0]; i++)
		if (strcmp(s, ssl_modes[i]) == 0)
			return true;
	return false;
}

const char *pqpool__shown(const char *v, char *out, size_t outlen)
{
	return pqc_shown(v, strlen(v), PQPOOL__SHOW_MAX, out, outlen);
}

const char *pqpool__opt_get(const PQconninfoOption *o, const char *kw)
{
	for (; o && o->keyword; o++)
		if (strcmp(o->keyword, kw) == 0)
			return (o->val && o->val[0]) ? o->val : NULL;
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
		if (n && !pqc_parse_int(one, 1, 65535, &port))
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
int pqpool__parse_conninfo(const char *conninfo, const char *label, bool check_values,
                           PQconninfoOption **out, char *msg, size_t msglen)
{
	char *perr = NULL, show[PQPOOL__SHOW_MAX + PQC_SHOWN_EXTRA], line[PQPOOL__ERRLEN];
	const char *why, *v;
	PQconninfoOption *o;
	*out = NULL;
	if ((why = pqpool__ambiguous_uri(conninfo))) {
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
		pqpool__scrub_unparsed(perr, conninfo);
		pqpool__trim_msg(perr, line, sizeof line);
		snprintf(msg, msglen, "%s: %s", label, line);
		PQfreemem(perr);
		return PQPOOL_EINVAL;
	}
	if (!check_values) {
		*out = o;
		return PQPOOL_OK;
	}
	if ((v = pqpool__opt_get(o, "port")) && !valid_port_list(v)) {
		snprintf(msg, msglen,
		         "%s: port \"%s\": expected an integer from 1 to 65535", label,
		         pqpool__shown(v, show, sizeof show));
	} else if ((v = pqpool__opt_get(o, "sslmode")) && !pqpool__valid_ssl_mode(v)) {
		snprintf(msg, msglen, "%s: sslmode \"%s\": expected %s", label,
		         pqpool__shown(v, show, sizeof show), PQPOOL__SSL_MODES_TEXT);
	} else {
		*out = o;
		return PQPOOL_OK;
	}
	/* our own words, but they quote values: keep the parsed secrets out */
	pqpool__scrub(msg, pqpool__opt_get(o, "password"));
	pqpool__scrub(msg, pqpool__opt_get(o, "sslpassword"));
	PQconninfoFree(o);
	return PQPOOL_EINVAL;
}

/* The options that are set, as borrowed pairs; room for `extra` more.
 * Returns NULL without memory. */
static pqpool__kv *collect(const PQconninfoOption *o, size_t extra, size_t *n)
{
	size_t total = 0;
	pqpool__kv *e;
	for (const PQconninfoOption *p = o; p->keyword; p++)
		total++;
	e = malloc((total + extra) * sizeof *e);
	*n = 0;
	if (!e)
		return NULL;
	for (; o->keyword; o++)
		if (o->val && o->val[0])
			e[(*n)++] = (pqpool__kv){o->keyword, o->val};
	return e;
}

int pqpool_mask_conninfo(const char *conninfo, char *out, size_t outlen)
{
	char msg[PQPOOL__ERRLEN];
	PQconninfoOption *o;
	pqc_sbuf b = PQC_SBUF_INIT;
	size_t n, len;
	pqpool__kv *e;
	/* for display only: a bad port or sslmode is still worth showing */
	int st = pqpool__parse_conninfo(conninfo ? conninfo : PQPOOL__DEFAULT_CONNINFO,
	                                "conninfo", false, &o, msg, sizeof msg);
	if (st == PQPOOL_OK && !(e = collect(o, 0, &n))) {
		PQconninfoFree(o);
		snprintf(msg, sizeof msg, "conninfo: out of memory");
		st = PQPOOL_ENOMEM;
	}
	if (st != PQPOOL_OK) {
		if (outlen)
			snprintf(out, outlen, "(invalid)");
		return pqpool__fail(st, "%s", msg);
	}
	pqpool__render_masked(&b, e, n);
	free(e);
	PQconninfoFree(o);
	if (b.failed) {
		pqc_sbuf_free(&b);
		if (outlen)
			snprintf(out, outlen, "(invalid)");
		return pqpool__fail(PQPOOL_ENOMEM, "conninfo: out of memory");
	}
	len = b.len;
	if (outlen)
		snprintf(out, outlen, "%s", b.p ? b.p : "");
	pqc_sbuf_free(&b);
	pqpool__ok();
	return len > INT_MAX ? INT_MAX : (int)len;
}

static void kv_set(pqpool__kv *e, size_t *n, const char *k, const char *v)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(e[i].k, k) == 0) {
			e[i].v = v;
			return;
		}
	e[(*n)++] = (pqpool__kv){k, v};
}

/* Hosts named: the longer of the comma-separated host and hostaddr lists,
 * as libpq counts them. */
static int count_hosts(const pqpool__kv *e, size_t n)
{
	int most = 1;
	const char *kws[] = {"host", "hostaddr"};
	for (size_t k = 0; k < 2; k++) {
		const char *v = pqpool__kv_get(e, n, kws[k]);
		int c = 1;
		if (!v)
			continue;
		for (; *v; v++)
			c += *v == ',';
		if (c > most)
			most = c;
	}
	return most;
}

/* Fills out's keyword arrays, masked form and secret from the n options of
 * e, in one block it owns. False: out of memory. */
static bool pack(pqpool__params *out, const pqpool__kv *e, size_t n, const char *masked)
{
	size_t mlen = strlen(masked), size;
	char *mem, *w;
	/* one block: both pointer arrays, then every string */
	size = 2 * (n + 1) * sizeof(char *) + mlen + 1;
	for (size_t i = 0; i < n; i++)
		size += strlen(e[i].k) + 1 + strlen(e[i].v) + 1;
	if (!(mem = malloc(size)))
		return false;
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
	out->secret = NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(out->keywords[i], "password") == 0)
			out->secret = out->values[i];
	return true;
}

int pqpool__params_build(const pqpool_config *cfg, pqpool__params *out, char *err,
                         size_t errlen)
{
	char msg[PQPOOL__ERRLEN], stmt[48], *masked = NULL, *options = NULL;
	PQconninfoOption *o = NULL;
	size_t n;
	pqpool__kv *e = NULL;
	pqc_sbuf b = PQC_SBUF_INIT;
	int st;
	if (out)
		memset(out, 0, sizeof *out);
	if (!out || !cfg) {
		if (err && errlen)
			snprintf(err, errlen, "params_build: NULL argument");
		return pqpool__fail(PQPOOL_EINVAL, "params_build: NULL argument");
	}
	st = pqpool__parse_conninfo(cfg->conninfo ? cfg->conninfo
	                                          : PQPOOL__DEFAULT_CONNINFO,
	                            "conninfo", true, &o, msg, sizeof msg);
	if (st != PQPOOL_OK)
		goto fail;
	/* four SSL overrides, options, fallback_application_name,
	 * target_session_attrs */
	e = collect(o, 7, &n);
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
	pqpool__render_masked(&b, e, n);
	if (!(masked = pqc_sbuf_finish(&b)))
		goto oom;

	if (cfg->statement_timeout_ms > 0) {
		const char *user_opts = pqpool__kv_get(e, n, "options");
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
	out->nhosts = count_hosts(e, n);
	{
		const char *tsa = pqpool__kv_get(e, n, "target_session_attrs");
		if (!tsa && out->nhosts > 1)
			kv_set(e, &n, "target_session_attrs", tsa = "read-write");
		out->need_primary = tsa && (strcmp(tsa, "read-write") == 0 ||
		                            strcmp(tsa, "primary") == 0);
	}
	if (!pqpool__kv_get(e, n, "application_name") &&
	    !pqpool__kv_get(e, n, "fallback_application_name"))
		kv_set(e, &n, "fallback_application_name", "pqpool");

	if (!pack(out, e, n, masked))
		goto oom;
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

/* The i-th item of a comma-separated list, into out ("" when past the
 * end); a list of one item applies to every host, as libpq's ports do. */
static const char *nth(const char *list, int i, char *out, size_t outlen)
{
	const char *s = list;
	size_t len;
	if (!strchr(s, ','))
		i = 0;
	for (; i > 0 && s; i--)
		if ((s = strchr(s, ',')) != NULL)
			s++;
	len = s ? strcspn(s, ",") : 0;
	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, s ? s : "", len);
	out[len] = '\0';
	return out;
}

int pqpool__params_for_host(const pqpool__params *all, int i, pqpool__params *out)
{
	char host[256], hostaddr[64], port[16], *masked;
	pqpool__kv *e, *shown;
	size_t n = 0, m = 0, k;
	pqc_sbuf b = PQC_SBUF_INIT;
	bool ok;

	memset(out, 0, sizeof *out);
	for (k = 0; all->keywords[k]; k++)
		;
	/* the options, then (from e + k + 1) those shown */
	if (!(e = malloc(2 * (k + 1) * sizeof *e)))
		return pqpool__fail(PQPOOL_ENOMEM, "conninfo: out of memory");
	shown = e + k + 1;
	for (k = 0; all->keywords[k]; k++) {
		const char *kw = all->keywords[k], *v = all->values[k];
		if (strcmp(kw, "host") == 0)
			v = nth(v, i, host, sizeof host);
		else if (strcmp(kw, "hostaddr") == 0)
			v = nth(v, i, hostaddr, sizeof hostaddr);
		else if (strcmp(kw, "port") == 0)
			v = nth(v, i, port, sizeof port);
		else if (strcmp(kw, "target_session_attrs") == 0)
			continue; /* a member takes its host as it is: we track roles */
		if (*v)
			e[n++] = (pqpool__kv){kw, v};
	}
	/* shown without what params_build added (the statement timeout rides
	 * in options; the application name fallback) */
	for (k = 0; k < n; k++)
		if (strcmp(e[k].k, "options") != 0 &&
		    strcmp(e[k].k, "fallback_application_name") != 0)
			shown[m++] = e[k];
	pqpool__render_masked(&b, shown, m);
	ok = (masked = pqc_sbuf_finish(&b)) != NULL && pack(out, e, n, masked);
	free(masked);
	free(e);
	if (!ok)
		return pqpool__fail(PQPOOL_ENOMEM, "conninfo: out of memory");
	out->nhosts = 1;
	out->need_primary = false;
	return PQPOOL_OK;
}

void pqpool__params_free(pqpool__params *p)
{
	if (!p)
		return;
	free(p->storage_);
	memset(p, 0, sizeof *p);
}
