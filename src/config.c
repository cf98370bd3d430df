/* config.c — the configuration: defaults, the environment variables and
 * their strict validation. What a conninfo means is conninfo.c's. */
#include "pqpool.h"

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conninfo.h"
#include "error.h"
#include "parse.h"
#include "sbuf.h"
#include "utf8.h"

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
	cfg->pipeline = true;
	cfg->pipeline_depth = 32;
	cfg->fail_fast = false;
}

void pqpool_config_clear(pqpool_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->priv_);
	pqpool_config_init(cfg);
}

/* A libpq key=value value: always quoted, so spaces and '=' are literal;
 * only the quote and the backslash need escaping inside. */
static void put_quoted(pqc_sbuf *b, const char *s)
{
	pqc_sbuf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\\' || *s == '\'')
			pqc_sbuf_putc(b, '\\');
		pqc_sbuf_putc(b, *s);
	}
	pqc_sbuf_putc(b, '\'');
}

static bool blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

enum field_kind { F_INT, F_QUERY, F_BOOL, F_TARGET };

/* DB_READ_TARGET's words, by value. */
static const char *const read_targets[] = {"prefer-standby", "standby", "any"};

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
        FIELD("DB_PIPELINE", pipeline, F_BOOL, 0, 0),
        FIELD("DB_PIPELINE_DEPTH", pipeline_depth, F_INT, 1, 1024),
        FIELD("DB_PIPELINE_ONE_SYNC", pipeline_one_sync, F_BOOL, 0, 0),
        FIELD("DB_READ_TARGET", read_target, F_TARGET, 0, 2),
        FIELD("DB_MAX_REPLICA_LAG", max_replica_lag_ms, F_INT, 0, INT_MAX),
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
		int st = pqpool__parse_conninfo(cfg->conninfo, "conninfo", true, &o, msg,
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
		if (f->kind == F_INT || f->kind == F_TARGET) {
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
	if (cfg->ssl_mode && !pqpool__valid_ssl_mode(cfg->ssl_mode)) {
		char show[PQPOOL__SHOW_MAX + PQC_SHOWN_EXTRA];
		bad(&r, PQPOOL_EINVAL, "ssl_mode (SSL_MODE)=\"%s\": expected %s",
		    pqpool__shown(cfg->ssl_mode, show, sizeof show),
		    PQPOOL__SSL_MODES_TEXT);
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

static void put_pair(pqc_sbuf *b, const char *sep, const char *k, const char *v)
{
	pqc_sbuf_puts(b, sep);
	pqc_sbuf_puts(b, k);
	pqc_sbuf_putc(b, '=');
	put_quoted(b, v);
}

/* key='value' pairs from the POSTGRES_* parts: quoting, unlike a hand-built
 * URL, keeps any character of the password literal. Owned, or NULL. */
static char *build_conninfo(const char *host, const char *port, const char *db,
                            const char *user, const char *pw)
{
	const char *const k[] = {"host", "port", "dbname", "user", "password"};
	const char *const v[] = {host, port, db, user, pw};
	pqc_sbuf b = PQC_SBUF_INIT;
	for (int i = 0; i < 5; i++)
		put_pair(&b, i ? " " : "", k[i], v[i]);
	return pqc_sbuf_finish(&b);
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
		char show[PQPOOL__SHOW_MAX + PQC_SHOWN_EXTRA];
		bad(r, PQPOOL_EINVAL, "%s=\"%s\": expected a readable file", name,
		    pqpool__shown(v, show, sizeof show));
	}
}

int pqpool_config_from_env(pqpool_config *cfg, pqpool_getenv_fn lookup, void *arg,
                           char *err, size_t errlen)
{
	env_src e = {lookup ? lookup : getenv_lookup, arg};
	report r = {PQPOOL_OK, ""};
	char show[PQPOOL__SHOW_MAX + PQC_SHOWN_EXTRA], *built = NULL;
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
		if (!pqc_parse_int(p, 1, 65535, &port))
			bad(&r, PQPOOL_EINVAL,
			    "POSTGRES_PORT=\"%s\": expected an integer from 1 to 65535",
			    pqpool__shown(p, show, sizeof show));
		else if (!(built = build_conninfo(host, p, db, user, pw)))
			bad(&r, PQPOOL_ENOMEM, "config_from_env: out of memory");
		conninfo = built;
	}
	if (conninfo) {
		char msg[PQPOOL__ERRLEN];
		int st = pqpool__parse_conninfo(conninfo,
		                                url ? "DATABASE_URL" : "POSTGRES_*", true,
		                                &o, msg, sizeof msg);
		if (st != PQPOOL_OK)
			bad(&r, st, "%s", msg);
		own_sslmode = pqpool__opt_get(o, "sslmode");
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
			if (!pqc_parse_int(v, f->min, f->max, int_at(&c, f)))
				bad(&r, PQPOOL_EINVAL,
				    "%s=\"%s\": expected an integer from %d to %d",
				    f->env, pqpool__shown(v, show, sizeof show), f->min,
				    f->max);
		} else if (f->kind == F_TARGET) {
			int k = 0;
			while (k < 3 && strcmp(v, read_targets[k]) != 0)
				k++;
			if (k == 3)
				bad(&r, PQPOOL_EINVAL,
				    "%s=\"%s\": expected prefer-standby, standby or any",
				    f->env, pqpool__shown(v, show, sizeof show));
			else
				*int_at(&c, f) = k;
		} else if (f->kind == F_BOOL) {
			if (!pqc_parse_bool(v, (bool *)((char *)&c + f->off)))
				bad(&r, PQPOOL_EINVAL,
				    "%s=\"%s\": expected true or false", f->env,
				    pqpool__shown(v, show, sizeof show));
		} else {
			if (blank(v))
				bad(&r, PQPOOL_EINVAL,
				    "%s=\"%s\": expected an SQL statement", f->env,
				    pqpool__shown(v, show, sizeof show));
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
		if (!pqpool__valid_ssl_mode(ssl_env))
			bad(&r, PQPOOL_EINVAL, "SSL_MODE=\"%s\": expected %s",
			    pqpool__shown(ssl_env, show, sizeof show),
			    PQPOOL__SSL_MODES_TEXT);
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
